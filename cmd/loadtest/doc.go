// Command loadtest drives the standalone server (examples/server) end to
// end, on this machine only, and checks that no invite answered 201 is lost:
//
//	go run ./cmd/loadtest                        # throughput, 32 clients, 10s
//	go run ./cmd/loadtest -scenario memory       # 100,000 invites, VmRSS table
//	go run ./cmd/loadtest -scenario smtp-faults  # 4xx, drops and a hang at the SMTP server
//	go run ./cmd/loadtest -scenario kill         # SIGKILL and restart mid-load
//	go run ./cmd/loadtest -scenario sustained    # does delivery keep pace with intake?
//	go run ./cmd/loadtest -scenario all
//
// Each scenario builds (or takes with -server) the server binary, runs it
// as a child process in a temporary folder on SQLite with -delivery queued,
// and points its -smtp at an SMTP server inside the loadtest process (the
// sink), which records each message's address and Message-Id and can be
// made to refuse with 451, drop connections at random or hang. Every
// request asks for an invite to a new address, so each 201 can be matched
// with the message the sink received; after the load the command waits,
// at most -drain-timeout, for the server's queue to empty, and counts lost
// (201 but never received) and duplicated (same Message-Id twice) invites.
//
// Scenarios:
//
//   - throughput: -clients clients for -duration against the referral
//     server, then against a bare net/http server (this binary again, as a
//     child: the same process separation) that answers the same 201 to the
//     same requests; prints requests/s, p50 and p99 latency, statuses, and
//     the ratio of the two (target: at least 0.5).
//   - memory: -invites invites; the server's VmRSS every tenth of them, and
//     its growth from the second sample to the last.
//   - smtp-faults: for -duration, the sink accepts, refuses with 451, drops
//     connections at random (some after storing a message, before its 250:
//     the only fault that may duplicate), hangs, and recovers.
//   - kill: for -duration, the server is killed with SIGKILL -kills times
//     and restarted on the same database and port.
//   - sustained: -clients clients for -duration, then the drain; prints
//     accepted/s, delivered/s during the load, delivered by its end /
//     accepted (target: at least 0.9), the backlog at its end, the drain
//     time, the server's CPU per accepted invite and per message drained,
//     and delivery CPU per message / intake CPU per accepted invite
//     (target: at most 1.0, moonshot 0.5), with a table of the backlog
//     sampled every second. During the load the server's CPU covers both
//     intake and delivery, so intake CPU is derived: (CPU during the load
//     minus messages delivered during it x CPU per message while
//     draining) / accepted; the raw figures are printed with it. Missed
//     targets are reported (meets/BELOW), not failed.
//
// Traffic goes to 127.0.0.1 only; every loop is bounded in time or count,
// and the command stops by itself. It exits 1 when a scenario fails its
// checks (a lost invite, a status other than 201, an unexplained
// duplicate). It reads /proc, so it runs on Linux.
//
// Tests: go test ./cmd/loadtest/ runs only the tests that build nothing
// (flags, the sink). The scenario tests build the server and run every
// scenario in small form only when REFERRAL_LOADTEST=1 is set:
//
//	REFERRAL_LOADTEST=1 go test ./cmd/loadtest/                             # every scenario, small
//	REFERRAL_LOADTEST=1 go test -run 'TestScenarios/^kill$' ./cmd/loadtest/ # the one .ci/run runs
package main
