package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// referrerEvery is how many requests share one referrer: below the default
// limit of 50 per referrer a day, so that no request is refused by it.
const referrerEvery = 40

// requestTimeout bounds one request, so that a hung server cannot hold a
// client for ever.
const requestTimeout = 30 * time.Second

// workload names the requests of one run: request n goes to its own
// address, from referrer n/referrerEvery. The run's random tag keeps
// addresses and referrers apart from any earlier run on the same database.
type workload struct {
	tag   uint32
	limit int64 // requests in all; 0: no limit
	next  atomic.Int64
}

func newWorkload(limit int) *workload {
	return &workload{tag: rand.Uint32(), limit: int64(limit)}
}

// take returns the next request number, or false once limit are taken.
func (w *workload) take() (int64, bool) {
	n := w.next.Add(1) - 1
	return n, w.limit == 0 || n < w.limit
}

func (w *workload) email(n int64) string {
	return fmt.Sprintf("lt%08x-%d@example.test", w.tag, n)
}

// referrer returns a UUID (version 4 layout) for request n's referrer.
func (w *workload) referrer(n int64) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", w.tag, n/referrerEvery)
}

// target is a server to drive, and the API key it takes.
type target struct {
	addr             string // "127.0.0.1:port"
	clientID, apiKey string
}

// transportError is the status recorded for a request that got no answer.
const transportError = "no answer"

// driveResult is what the clients saw.
type driveResult struct {
	elapsed   time.Duration
	latencies []time.Duration // of answered requests, sorted
	statuses  map[string]int  // "201", "500", ..., or transportError
	created   []string        // addresses answered 201
	unknown   []string        // addresses whose request got no answer
	serverCPU time.Duration   // CPU the server used meanwhile, if measured
}

// cpuPerCreated is the server's CPU time per 201.
func (r driveResult) cpuPerCreated() time.Duration {
	if len(r.created) == 0 {
		return 0
	}
	return r.serverCPU / time.Duration(len(r.created))
}

func (r driveResult) answered() int { return len(r.latencies) }

// createdPerSecond is the rate of 201s.
func (r driveResult) createdPerSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(len(r.created)) / r.elapsed.Seconds()
}

// percentile returns the p-th percentile latency (0 < p < 100).
func (r driveResult) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies)) * p / 100)
	return r.latencies[min(i, len(r.latencies)-1)]
}

// driver sends the workload's requests from concurrent clients.
type driver struct {
	clients int
	// duration bounds the run (0: until the workload's limit, which must
	// then be set); requests in flight at the end are let finish.
	duration time.Duration
	// onAnswer, if set, is called after each request with the number of
	// requests finished so far.
	onAnswer func(finished int64)
	// accepted, if set, counts the 201s as they arrive.
	accepted *atomic.Int64
}

// clientResult is one client's share, merged at the end.
type clientResult struct {
	latencies []time.Duration
	statuses  map[string]int
	created   []string
	unknown   []string
}

// run drives tg until the duration or the workload runs out, or ctx ends.
func (d driver) run(ctx context.Context, tg target, w *workload) driveResult {
	tr := &http.Transport{
		MaxIdleConns:        2 * d.clients,
		MaxIdleConnsPerHost: 2 * d.clients,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: requestTimeout}
	var finished atomic.Int64
	start := time.Now()
	deadline := start.Add(d.duration)
	results := make([]clientResult, d.clients)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			cr := clientResult{statuses: map[string]int{}}
			for ctx.Err() == nil && (d.duration == 0 || time.Now().Before(deadline)) {
				n, ok := w.take()
				if !ok {
					break
				}
				email := w.email(n)
				t0 := time.Now()
				status, err := send(ctx, client, tg, w.referrer(n), email)
				if err != nil {
					cr.statuses[transportError]++
					cr.unknown = append(cr.unknown, email)
					// A server that is down refuses at once: pause rather
					// than spin.
					sleep(ctx, 20*time.Millisecond)
				} else {
					cr.latencies = append(cr.latencies, time.Since(t0))
					cr.statuses[strconv.Itoa(status)]++
					if status == http.StatusCreated {
						cr.created = append(cr.created, email)
						if d.accepted != nil {
							d.accepted.Add(1)
						}
					}
				}
				if d.onAnswer != nil {
					d.onAnswer(finished.Add(1))
				}
			}
			results[i] = cr
		})
	}
	wg.Wait()
	res := driveResult{elapsed: time.Since(start), statuses: map[string]int{}}
	for _, cr := range results {
		res.latencies = append(res.latencies, cr.latencies...)
		res.created = append(res.created, cr.created...)
		res.unknown = append(res.unknown, cr.unknown...)
		for k, v := range cr.statuses {
			res.statuses[k] += v
		}
	}
	slices.Sort(res.latencies)
	return res
}

// send posts one invite and returns the status.
func send(ctx context.Context, client *http.Client, tg target, referrer, email string) (int, error) {
	body := `{"email":"` + email + `","language":"en"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+tg.addr+"/v1/users/"+referrer+"/referral-invites", bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-KEY", tg.apiKey)
	req.Header.Set("X-API-KEY-TYPE", "write")
	req.Header.Set("X-CLIENT-ID", tg.clientID)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	// Read to the end so that the connection is reused.
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
