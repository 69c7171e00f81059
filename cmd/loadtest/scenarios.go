package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// ratioTarget is the least acceptable referral/bare throughput ratio.
const ratioTarget = 0.5

// memoryTimeLimit bounds the memory scenario's load, which -invites ends
// normally.
const memoryTimeLimit = 30 * time.Minute

// report is one scenario's outcome: tables for a person, fields for tests.
type report struct {
	scenario string
	header   []string
	tables   []table
	notes    []string
	problems []string // empty: the scenario passed its checks

	referral driveResult
	bare     driveResult
	ratio    float64 // referral/bare 201s per second (throughput)
	delivery delivery
	samples  []memSample // memory
	kills    int         // kill
	sus      sustained   // sustained
}

type table struct {
	title string
	left  bool       // align columns left (key and value tables)
	rows  [][]string // the first is the header
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "== scenario %s ==\n", r.scenario)
	for _, h := range r.header {
		fmt.Fprintln(w, h)
	}
	for _, t := range r.tables {
		fmt.Fprintf(w, "\n%s\n", t.title)
		flags := tabwriter.AlignRight
		if t.left {
			flags = 0
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', flags)
		for _, row := range t.rows {
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		tw.Flush()
	}
	if len(r.notes) > 0 {
		fmt.Fprintln(w)
	}
	for _, n := range r.notes {
		fmt.Fprintln(w, n)
	}
	if len(r.problems) == 0 {
		fmt.Fprintf(w, "\nresult: PASS\n\n")
		return
	}
	fmt.Fprintf(w, "\nresult: FAIL\n")
	for _, p := range r.problems {
		fmt.Fprintln(w, "  -", p)
	}
	fmt.Fprintln(w)
}

// runScenario runs one scenario by name.
func runScenario(ctx context.Context, name string, o options, stderr io.Writer) (*report, error) {
	fmt.Fprintf(stderr, "loadtest: scenario %s\n", name)
	e, err := newEnv(ctx, o, name)
	if err != nil {
		return nil, err
	}
	r := &report{scenario: name, header: []string{
		"server:  " + e.setup.commandLine(),
		fmt.Sprintf("clients: %d, each request a new address, a new referrer every %d requests", o.clients, referrerEvery),
	}}
	defer func() {
		// A failed scenario keeps its folder: the server's log tells why.
		e.keep = e.keep || err != nil || len(r.problems) > 0
		e.close(stderr)
	}()
	switch name {
	case "throughput":
		err = throughput(ctx, e, o, r)
	case "memory":
		err = memory(ctx, e, o, r)
	case "smtp-faults":
		err = smtpFaults(ctx, e, o, r)
	case "kill":
		err = kill(ctx, e, o, r)
	case "sustained":
		err = sustain(ctx, e, o, r)
	default:
		err = fmt.Errorf("loadtest: unknown scenario %q", name)
	}
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("loadtest: interrupted: %w", ctx.Err())
	}
	return r, nil
}

// throughput drives the referral server, then the bare one, for the same
// time with the same clients.
func throughput(ctx context.Context, e *env, o options, r *report) error {
	var err error
	r.referral, err = measureCPU(e.server(), func() driveResult {
		return driver{clients: o.clients, duration: o.duration}.run(ctx, e.tg, newWorkload(0))
	})
	if err != nil {
		return err
	}
	// CPU per message while draining is the worker's alone: it tells how
	// the referral server's CPU splits between requests and delivery.
	sentBefore := e.sink.count()
	var drainErr error
	drainCPU, err := measureCPU(e.server(), func() driveResult {
		r.delivery, drainErr = e.drain(ctx, o.drainTimeout, r.referral.created, r.referral.unknown)
		return driveResult{}
	})
	if err = errors.Join(err, drainErr); err != nil {
		return err
	}
	drained := e.sink.count() - sentBefore
	// The referral server is stopped so that the bare one has the machine
	// to itself, as the referral server had.
	e.stopServer()
	bare, err := startBare(ctx, e.dir)
	if err != nil {
		return err
	}
	r.bare, err = measureCPU(bare, func() driveResult {
		return driver{clients: o.clients, duration: o.duration}.run(ctx, target{addr: bare.addr}, newWorkload(0))
	})
	bare.stop()
	if err != nil {
		return err
	}

	if b := r.bare.createdPerSecond(); b > 0 {
		r.ratio = r.referral.createdPerSecond() / b
	}
	r.tables = append(r.tables, loadTable("load", []string{"referral", "bare net/http"}, r.referral, r.bare))
	r.notes = append(r.notes, fmt.Sprintf("ratio referral/bare (201/s): %.2f (%s the target %.1f)", r.ratio, verdict(r.ratio >= ratioTarget), ratioTarget))
	if r.bare.cpuPerCreated() > 0 {
		r.notes = append(r.notes, fmt.Sprintf("server CPU per 201, referral/bare: %.1fx (less sensitive than 201/s to other load on the machine; the referral server's includes its delivery worker's)",
			float64(r.referral.cpuPerCreated())/float64(r.bare.cpuPerCreated())))
	}
	if drained >= 100 {
		r.notes = append(r.notes, fmt.Sprintf("delivery worker CPU per message, measured while draining %d: %.0fµs",
			drained, float64(drainCPU.serverCPU/time.Duration(drained))/float64(time.Microsecond)))
	}
	r.tables = append(r.tables, deliveryTable(r.delivery))
	r.problems = append(r.problems, onlyStatuses(r.referral, "201")...)
	r.problems = append(r.problems, onlyStatuses(r.bare, "201")...)
	r.problems = append(r.problems, r.delivery.problems(0, "no fault was injected")...)
	return nil
}

// memSample is the server's resident memory after some invites.
type memSample struct {
	label   string
	invites int64
	rssKiB  int64
	dbBytes int64
	backlog int64 // 201s not yet received by the sink
}

// memory sends o.invites invites, sampling the server's resident memory
// every tenth of them.
func memory(ctx context.Context, e *env, o options, r *report) error {
	step := int64(max(o.invites/10, 1))
	srv := e.server()
	var mu sync.Mutex
	var sampleErr error
	sample := func(label string, n int64) {
		rss, err := srv.rssKiB()
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			sampleErr = err
			return
		}
		r.samples = append(r.samples, memSample{label: label, invites: n, rssKiB: rss,
			dbBytes: dbBytes(e.setup.dbPath()), backlog: n - int64(e.sink.count())})
	}
	sample("before load", 0)
	d := driver{clients: o.clients, duration: memoryTimeLimit, onAnswer: func(n int64) {
		if n%step == 0 {
			sample("", n)
		}
	}}
	w := newWorkload(o.invites)
	r.referral = d.run(ctx, e.tg, w)
	var err error
	if r.delivery, err = e.drain(ctx, o.drainTimeout, r.referral.created, r.referral.unknown); err != nil {
		return err
	}
	sample("after drain", int64(o.invites))
	if sampleErr != nil {
		return sampleErr
	}
	// Samples taken by concurrent clients may arrive out of order.
	slices.SortStableFunc(r.samples, func(a, b memSample) int {
		if a.label == "after drain" || b.label == "after drain" {
			return boolCmp(a.label == "after drain", b.label == "after drain")
		}
		return cmp.Compare(a.invites, b.invites)
	})
	rows := [][]string{{"invites", "VmRSS MiB", "db+wal MiB", "queued, not yet received"}}
	for _, s := range r.samples {
		n := fmt.Sprint(s.invites)
		if s.label != "" {
			n = s.label
		}
		rows = append(rows, []string{n, mib(s.rssKiB << 10), mib(s.dbBytes), fmt.Sprint(max(s.backlog, 0))})
	}
	r.tables = append(r.tables,
		loadTable("load", []string{"referral"}, r.referral),
		table{title: "resident memory of the server", rows: rows},
		deliveryTable(r.delivery))
	if from, to, ok := r.growthSpan(step); ok {
		growth := to.rssKiB - from.rssKiB
		r.notes = append(r.notes, fmt.Sprintf("VmRSS growth from %d to %d invites: %+.1f MiB (%+.1f%%); the database grew %+.1f MiB",
			from.invites, to.invites, float64(growth)/1024, 100*float64(growth)/float64(from.rssKiB),
			float64(to.dbBytes-from.dbBytes)/(1<<20)))
	}
	r.problems = append(r.problems, onlyStatuses(r.referral, "201")...)
	r.problems = append(r.problems, r.delivery.problems(0, "no fault was injected")...)
	if got := r.referral.answered() + r.referral.statuses[transportError]; got < o.invites {
		r.problems = append(r.problems, fmt.Sprintf("only %d of %d invites were sent within %s", got, o.invites, memoryTimeLimit))
	}
	return nil
}

// growthSpan returns the sample after two steps and the last sample under
// load.
func (r *report) growthSpan(step int64) (from, to memSample, ok bool) {
	var under []memSample
	for _, s := range r.samples {
		if s.label == "" {
			under = append(under, s)
		}
	}
	for _, s := range under {
		if s.invites == 2*step {
			return s, under[len(under)-1], len(under) > 2
		}
	}
	return memSample{}, memSample{}, false
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// phase is a window of the fault schedule, as fractions of the load time.
type phase struct {
	from, to float64
	mode     sinkMode
}

// faultPhases is the smtp-faults schedule: a clean start, then 4xx
// refusals, random drops, a hang, and a clean end to recover in.
func faultPhases() []phase {
	return []phase{
		{0, 0.15, modeAccept},
		{0.15, 0.35, modeRefuse},
		{0.35, 0.55, modeDrop},
		{0.55, 0.70, modeHang},
		{0.70, 1, modeAccept},
	}
}

// smtpFaults drives the server while the sink misbehaves on schedule.
func smtpFaults(ctx context.Context, e *env, o options, r *report) error {
	phases := faultPhases()
	schedCtx, stopSched := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		start := time.Now()
		for _, p := range phases {
			sleep(schedCtx, time.Until(start.Add(time.Duration(p.from*float64(o.duration)))))
			if schedCtx.Err() != nil {
				return
			}
			e.sink.setMode(p.mode)
		}
	})
	r.referral = driver{clients: o.clients, duration: o.duration}.run(ctx, e.tg, newWorkload(0))
	stopSched()
	wg.Wait()
	e.sink.setMode(modeAccept)
	var err error
	if r.delivery, err = e.drain(ctx, o.drainTimeout, r.referral.created, r.referral.unknown); err != nil {
		return err
	}
	rows := [][]string{{"from", "to", "the sink"}}
	for _, p := range phases {
		rows = append(rows, []string{
			round(time.Duration(p.from * float64(o.duration))).String(),
			round(time.Duration(p.to * float64(o.duration))).String(),
			p.mode.String()})
	}
	r.tables = append(r.tables,
		table{title: "fault schedule (from the start of the load)", rows: rows},
		loadTable("load", []string{"referral"}, r.referral),
		deliveryTable(r.delivery))
	r.notes = append(r.notes, fmt.Sprintf("duplicates are expected only from withheld 250s (%d): the server cannot tell that those arrived", r.delivery.lostAcks))
	r.problems = append(r.problems, onlyStatuses(r.referral, "201")...)
	r.problems = append(r.problems, r.delivery.problems(r.delivery.lostAcks, "more than the 250s the sink withheld")...)
	return nil
}

// workerBatch and senders are the server's referral.Config.WorkerBatch
// and Senders (their defaults). A batch is the most invites one kill can
// leave sent but not marked sent: outcomes are recorded while the next
// messages go out.
const (
	workerBatch = 64
	senders     = 4
)

// kill drives the server and kills it (SIGKILL) o.kills times, evenly
// spread over the load, restarting it on the same database and port.
func kill(ctx context.Context, e *env, o options, r *report) error {
	type event struct {
		at, away time.Duration
		pending  int
	}
	var events []event
	var killErr error
	killCtx, stopKills := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		start := time.Now()
		for i := 1; i <= o.kills; i++ {
			sleep(killCtx, time.Until(start.Add(o.duration*time.Duration(i)/time.Duration(o.kills+1))))
			if killCtx.Err() != nil {
				return
			}
			at := time.Since(start)
			away, err := e.killAndRestart(killCtx)
			if err != nil {
				killErr = err
				return
			}
			q, _ := readQueue(killCtx, e.db)
			events = append(events, event{at: at, away: away, pending: q.pending})
		}
	})
	r.referral = driver{clients: o.clients, duration: o.duration}.run(ctx, e.tg, newWorkload(0))
	stopKills()
	wg.Wait()
	if killErr != nil {
		return killErr
	}
	r.kills = len(events)
	var err error
	if r.delivery, err = e.drain(ctx, o.drainTimeout, r.referral.created, r.referral.unknown); err != nil {
		return err
	}
	rows := [][]string{{"kill", "at", "back after", "pending after restart"}}
	for i, ev := range events {
		rows = append(rows, []string{fmt.Sprint(i + 1), round(ev.at).String(), round(ev.away).String(), fmt.Sprint(ev.pending)})
	}
	r.tables = append(r.tables,
		table{title: "kills (SIGKILL, then restart on the same database and port)", rows: rows},
		loadTable("load", []string{"referral"}, r.referral),
		deliveryTable(r.delivery))
	r.notes = append(r.notes,
		fmt.Sprintf("invites claimed when the server died wait out their lease (%d x -send-timeout = %s) before they are sent again", leaseSends, round(leaseSends*o.sendTimeout)),
		fmt.Sprintf("the worker records outcomes while it sends the next message, so a kill can duplicate the messages of one claimed batch that were sent but not yet marked sent: at most %d", workerBatch))
	r.problems = append(r.problems, onlyStatuses(r.referral, "201", transportError)...)
	r.problems = append(r.problems, r.delivery.problems(workerBatch*r.kills, fmt.Sprintf("more than a claimed batch (%d) per kill", workerBatch))...)
	if r.kills < o.kills {
		r.problems = append(r.problems, fmt.Sprintf("only %d of %d kills happened", r.kills, o.kills))
	}
	return nil
}

// measureCPU runs drive and adds the CPU time srv used meanwhile.
func measureCPU(srv *child, drive func() driveResult) (driveResult, error) {
	before, err := srv.cpuTime()
	if err != nil {
		return driveResult{}, err
	}
	res := drive()
	after, err := srv.cpuTime()
	if err != nil {
		return driveResult{}, err
	}
	res.serverCPU = after - before
	return res, nil
}

// onlyStatuses reports any status of res not in allowed.
func onlyStatuses(res driveResult, allowed ...string) []string {
	var p []string
	for _, s := range slices.Sorted(maps.Keys(res.statuses)) {
		if !contains(allowed, s) {
			p = append(p, fmt.Sprintf("%d requests answered %s", res.statuses[s], s))
		}
	}
	if len(res.created) == 0 {
		p = append(p, "no request was answered 201")
	}
	return p
}

// loadTable is one row of load figures per server.
func loadTable(title string, names []string, results ...driveResult) table {
	rows := [][]string{{"server", "time", "requests", "201/s", "p50", "p99", "server CPU/201", "statuses"}}
	for i, res := range results {
		var st []string
		for _, s := range slices.Sorted(maps.Keys(res.statuses)) {
			st = append(st, fmt.Sprintf("%s: %d", s, res.statuses[s]))
		}
		cpu := "-"
		if res.serverCPU > 0 {
			cpu = fmt.Sprintf("%.0fµs", float64(res.cpuPerCreated())/float64(time.Microsecond))
		}
		rows = append(rows, []string{
			names[i],
			round(res.elapsed).String(),
			fmt.Sprint(res.answered() + res.statuses[transportError]),
			fmt.Sprintf("%.0f", res.createdPerSecond()),
			ms(res.percentile(50)),
			ms(res.percentile(99)),
			cpu,
			strings.Join(st, ", "),
		})
	}
	return table{title: title, rows: rows}
}

func deliveryTable(d delivery) table {
	drained := fmt.Sprintf("drained in %s", round(d.drainTime))
	if !d.drained {
		drained = fmt.Sprintf("NOT drained after %s", round(d.drainTime))
	}
	return table{title: "delivery (after the load; queue " + drained + ")", left: true, rows: [][]string{
		{"what", "count"},
		{"201 answers", fmt.Sprint(d.created)},
		{"messages received by the sink", fmt.Sprint(d.received)},
		{"lost: 201 but never received", fmt.Sprint(d.lost)},
		{"duplicates: extra copies by Message-ID", fmt.Sprint(d.duplicates)},
		{"duplicates: extra copies by address", fmt.Sprint(d.duplicatesByTo)},
		{"received, request cut off by a kill", fmt.Sprint(d.cutOff)},
		{"received, never requested", fmt.Sprint(d.unexpected)},
		{"transactions refused or dropped by the sink", fmt.Sprint(d.refused)},
		{"messages stored with the 250 withheld", fmt.Sprint(d.lostAcks)},
		{"invites in the database: sent / failed / pending", fmt.Sprintf("%d / %d / %d", d.queue.sent, d.queue.failed, d.queue.pending)},
	}}
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }
