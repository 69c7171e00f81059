package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var code int
	if os.Getenv(roleEnv) == "bare" {
		code = exitCode(serveBare(ctx, os.Stderr), os.Stderr)
	} else {
		code = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}

// options are the command's flags.
type options struct {
	scenario     string
	clients      int
	duration     time.Duration
	invites      int
	kills        int
	server       string
	sendTimeout  time.Duration
	retryBackoff time.Duration
	maxBacklog   int
	drainTimeout time.Duration
	keep         bool
}

// scenarioNames lists the scenarios in the order "all" runs them.
func scenarioNames() []string {
	return []string{"throughput", "memory", "smtp-faults", "kill", "sustained"}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.scenario, "scenario", "throughput", "throughput, memory, smtp-faults, kill, sustained, or all")
	fs.IntVar(&o.clients, "clients", 32, "concurrent clients")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "load time: per server (throughput), in all (smtp-faults, kill, sustained); memory stops at -invites (or 30m)")
	fs.IntVar(&o.invites, "invites", 100_000, "memory: invites to send; resident memory is sampled every tenth of them")
	fs.IntVar(&o.kills, "kills", 1, "kill: how many times the server is killed (SIGKILL) and restarted during the load")
	fs.StringVar(&o.server, "server", "", "prebuilt standalone server binary; empty: go build ./examples/server into a temporary folder")
	fs.DurationVar(&o.sendTimeout, "send-timeout", 2*time.Second, fmt.Sprintf("the server's -send-timeout; a claim's lease, which a kill leaves behind, is %d times this", leaseSends))
	fs.DurationVar(&o.retryBackoff, "retry-backoff", time.Second, "the server's -retry-backoff: its 8 attempts span at least 63.5 times this, which must outlast the faults")
	fs.IntVar(&o.maxBacklog, "max-backlog", 0, "the server's -max-backlog (0: not passed, the server's default: no bound)")
	fs.DurationVar(&o.drainTimeout, "drain-timeout", 3*time.Minute, "bound on the wait for the server's queue to empty after the load")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary folders (databases, server logs) and print where they are; a failed scenario always keeps its own")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("loadtest: unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.scenario != "all" && !contains(scenarioNames(), o.scenario):
		return o, fmt.Errorf("loadtest: -scenario must be one of %v or all, not %q", scenarioNames(), o.scenario)
	case o.clients < 1 || o.clients > 1024:
		return o, errors.New("loadtest: -clients must be between 1 and 1024")
	case o.duration <= 0 || o.duration > time.Hour:
		return o, errors.New("loadtest: -duration must be positive and at most 1h")
	case o.invites < 10 || o.invites > 10_000_000:
		return o, errors.New("loadtest: -invites must be between 10 and 10,000,000")
	case o.kills < 1 || o.kills > 100:
		return o, errors.New("loadtest: -kills must be between 1 and 100")
	case o.maxBacklog < 0:
		return o, errors.New("loadtest: -max-backlog must not be negative")
	case o.sendTimeout <= 0 || o.retryBackoff <= 0 || o.drainTimeout <= 0:
		return o, errors.New("loadtest: -send-timeout, -retry-backoff and -drain-timeout must be positive")
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// run is the whole command; main only adds the process around it. It
// returns 0, 1 when a scenario failed its checks or could not run, 2 for
// bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if o.server != "" {
		// The server runs in its own folder: a relative path must not
		// change meaning there.
		if o.server, err = exec.LookPath(o.server); err == nil {
			o.server, err = filepath.Abs(o.server)
		}
		if err != nil {
			fmt.Fprintln(stderr, "loadtest: -server:", err)
			return 2
		}
	}
	if o.server == "" {
		dir, err := os.MkdirTemp("", "loadtest-build-")
		if err != nil {
			return exitCode(err, stderr)
		}
		defer os.RemoveAll(dir)
		fmt.Fprintln(stderr, "loadtest: building", serverPackage)
		if o.server, err = buildServer(ctx, dir); err != nil {
			return exitCode(err, stderr)
		}
	}
	names := []string{o.scenario}
	if o.scenario == "all" {
		names = scenarioNames()
	}
	failed := false
	for _, name := range names {
		rep, err := runScenario(ctx, name, o, stderr)
		if err != nil {
			return exitCode(err, stderr)
		}
		rep.print(stdout)
		failed = failed || len(rep.problems) > 0
	}
	if failed {
		return 1
	}
	return 0
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, err)
	return 1
}
