package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The sustained scenario's targets (issue 17).
const (
	keepPaceTarget    = 0.9 // delivered by the end of the load / accepted
	cpuRatioTarget    = 1.0 // delivery CPU per message / intake CPU per invite
	cpuRatioMoonshot  = 0.5
	backlogSampleTick = time.Second
)

// backlogSample is the state of the queue some time into the load.
type backlogSample struct {
	at                  time.Duration
	accepted, delivered int64
}

// cpuSplit separates the server's CPU during a load into intake and
// delivery. During the load one process does both, so delivery is charged
// at the rate per message measured while draining, when it does nothing
// else, and intake is what remains.
type cpuSplit struct {
	loadCPU   time.Duration // the server's CPU during the load
	accepted  int           // 201s during the load
	delivered int           // messages the sink received during the load
	drainCPU  time.Duration // the server's CPU while draining
	drained   int           // messages the sink received while draining
}

// perMessage is the delivery CPU per message, measured while draining.
func (s cpuSplit) perMessage() (time.Duration, bool) {
	if s.drained <= 0 {
		return 0, false
	}
	return time.Duration(float64(s.drainCPU) / float64(s.drained)), true
}

// intakePerAccepted is (loadCPU - delivered x perMessage) / accepted; not
// ok when perMessage is unknown or the remainder is not positive.
func (s cpuSplit) intakePerAccepted() (time.Duration, bool) {
	per, ok := s.perMessage()
	if !ok || s.accepted <= 0 {
		return 0, false
	}
	intake := float64(s.loadCPU) - float64(s.delivered)*float64(per)
	if intake <= 0 {
		return 0, false
	}
	return time.Duration(intake / float64(s.accepted)), true
}

// ratio is delivery CPU per message / intake CPU per accepted invite.
func (s cpuSplit) ratio() (float64, bool) {
	per, ok1 := s.perMessage()
	intake, ok2 := s.intakePerAccepted()
	if !ok1 || !ok2 {
		return 0, false
	}
	return float64(per) / float64(intake), true
}

// sustained is the sustained scenario's outcome.
type sustained struct {
	split   cpuSplit
	samples []backlogSample // every tick of the load, and its end
}

// sustain drives the server for o.duration, sampling the backlog, then
// lets it drain: can delivery keep pace with intake, and what does each
// cost?
func sustain(ctx context.Context, e *env, o options, r *report) error {
	var accepted atomic.Int64
	s := &r.sus
	start := time.Now()
	sample := func() {
		s.samples = append(s.samples, backlogSample{at: time.Since(start), accepted: accepted.Load(), delivered: int64(e.sink.count())})
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(backlogSampleTick)
		defer t.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
				sample()
			}
		}
	})
	var err error
	r.referral, err = measureCPU(e.server(), func() driveResult {
		res := driver{clients: o.clients, duration: o.duration, accepted: &accepted}.run(ctx, e.tg, newWorkload(0))
		stopSampling()
		wg.Wait()
		sample()
		return res
	})
	if err != nil {
		return err
	}
	end := s.samples[len(s.samples)-1]
	s.split = cpuSplit{loadCPU: r.referral.serverCPU, accepted: len(r.referral.created), delivered: int(end.delivered)}
	var drainErr error
	drainRes, err := measureCPU(e.server(), func() driveResult {
		r.delivery, drainErr = e.drain(ctx, o.drainTimeout, r.referral.created, r.referral.unknown)
		return driveResult{}
	})
	if err = errors.Join(err, drainErr); err != nil {
		return err
	}
	s.split.drainCPU, s.split.drained = drainRes.serverCPU, r.delivery.received-s.split.delivered

	r.tables = append(r.tables, loadTable("load", []string{"referral"}, r.referral), s.backlogTable(o.duration), s.table(r.referral.elapsed, r.delivery), deliveryTable(r.delivery))
	r.notes = append(r.notes, s.notes()...)
	r.problems = append(r.problems, onlyStatuses(r.referral, "201")...)
	r.problems = append(r.problems, r.delivery.problems(0, "no fault was injected")...)
	return nil
}

// backlogTable shows about a dozen of the samples, and the last.
func (s *sustained) backlogTable(load time.Duration) table {
	every := max(1, int(load/(12*backlogSampleTick)))
	rows := [][]string{{"t", "accepted so far", "delivered so far", "backlog"}}
	for i, b := range s.samples {
		if (i+1)%every != 0 && i != len(s.samples)-1 {
			continue
		}
		rows = append(rows, []string{round(b.at).String(), fmt.Sprint(b.accepted), fmt.Sprint(b.delivered), fmt.Sprint(max(b.accepted-b.delivered, 0))})
	}
	return table{title: "backlog during the load (sampled every second; the last row is the end of the load)", rows: rows}
}

func (s *sustained) table(load time.Duration, d delivery) table {
	sp := s.split
	rate := func(n int, d time.Duration) string {
		if d <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
	}
	drainTime := round(d.drainTime).String()
	if !d.drained {
		drainTime = "NOT drained after " + drainTime
	}
	rows := [][]string{
		{"what", "value"},
		{"load time", round(load).String()},
		{"accepted (201)", fmt.Sprint(sp.accepted)},
		{"accepted/s", rate(sp.accepted, load)},
		{"delivered during the load (received by the sink)", fmt.Sprint(sp.delivered)},
		{"delivered/s during the load", rate(sp.delivered, load)},
		{"delivered by the end of the load / accepted", fmt.Sprintf("%.3f", fraction(sp.delivered, sp.accepted))},
		{"backlog at the end of the load (201s not yet received)", fmt.Sprint(max(sp.accepted-sp.delivered, 0))},
		{"drain time after the load", drainTime},
		{"delivered while draining", fmt.Sprint(sp.drained)},
		{"delivered/s while draining", rate(sp.drained, d.drainTime)},
		{"raw: server CPU during the load (intake and delivery)", sp.loadCPU.Round(time.Millisecond).String()},
		{"raw: server CPU while draining (delivery only)", sp.drainCPU.Round(time.Millisecond).String()},
		{"server CPU per accepted invite during the load, delivery included", micro(sp.loadCPU, sp.accepted, true)},
	}
	per, ok := sp.perMessage()
	rows = append(rows, []string{"delivery CPU per message, while draining", micro(per, 1, ok)})
	intake, ok := sp.intakePerAccepted()
	rows = append(rows, []string{"intake CPU per accepted invite, derived (see below)", micro(intake, 1, ok)})
	ratio, ok := sp.ratio()
	v := "-"
	if ok {
		v = fmt.Sprintf("%.2f", ratio)
	}
	rows = append(rows, []string{"delivery CPU per message / intake CPU per accepted invite", v})
	return table{title: "sustained load: intake against delivery", left: true, rows: rows}
}

func (s *sustained) notes() []string {
	sp := s.split
	per, ok := sp.perMessage()
	notes := []string{fmt.Sprintf("intake CPU per accepted invite = (CPU during the load - delivered during the load x delivery CPU per message) / accepted = (%s - %d x %s) / %d: during the load the server's CPU covers both intake and the worker's deliveries, which are charged at the rate measured while draining",
		sp.loadCPU.Round(time.Millisecond), sp.delivered, micro(per, 1, ok), sp.accepted)}
	if sp.drained < 100 {
		notes = append(notes, fmt.Sprintf("only %d messages were delivered while draining: the CPU per message, and what is derived from it, is rough or unknown", sp.drained))
	}
	keep := fraction(sp.delivered, sp.accepted)
	notes = append(notes, fmt.Sprintf("delivered by the end of the load / accepted: %.3f (%s the target %.1f)", keep, verdict(keep >= keepPaceTarget), keepPaceTarget))
	if ratio, ok := sp.ratio(); ok {
		notes = append(notes, fmt.Sprintf("delivery CPU per message / intake CPU per accepted invite: %.2f (%s the target %.1f; %s the moonshot %.1f)",
			ratio, verdict(ratio <= cpuRatioTarget), cpuRatioTarget, verdict(ratio <= cpuRatioMoonshot), cpuRatioMoonshot))
	} else {
		notes = append(notes, "delivery CPU per message / intake CPU per accepted invite: unknown (nothing left to drain, or the derived intake CPU was not positive)")
	}
	return append(notes, "the targets are reported, not checked: only a lost, duplicated or unexpected message, or a status other than 201, fails the run")
}

func verdict(ok bool) string {
	if ok {
		return "meets"
	}
	return "BELOW"
}

func fraction(n, of int) float64 {
	if of <= 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// micro formats d/n in microseconds, or "-" when not ok.
func micro(d time.Duration, n int, ok bool) string {
	if !ok || n <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fµs", float64(d)/float64(n)/float64(time.Microsecond))
}
