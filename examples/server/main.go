package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program; main only adds the process around it. It
// returns the exit code: 0, 1 when something failed, 2 for bad usage
// ("suppress check" answers 0 or 1, and exits 2 when it cannot).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var err error
	switch {
	case len(args) > 0 && args[0] == "keys":
		err = runKeys(ctx, args[1:], getenv, stdout, stderr)
	case len(args) > 0 && args[0] == "apps":
		err = runApps(ctx, args[1:], getenv, stdout, stderr)
	case len(args) > 0 && args[0] == "token":
		err = runToken(ctx, args[1:], getenv, stdout, stderr)
	case len(args) > 0 && args[0] == "codes":
		err = runCodes(ctx, args[1:], getenv, stdout, stderr)
	case len(args) > 0 && args[0] == "suppress":
		err = runSuppress(ctx, args[1:], getenv, stdout, stderr)
	default:
		err = serve(ctx, args, getenv, stderr)
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errNotSuppressed): // already printed
		return 1
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "referral server:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "referral server:", err)
		return 1
	}
}

// usageError is a misconfiguration: the server stops before it starts.
type usageError struct{ error }

// parse parses args into fs; a flag it does not know or cannot set is bad
// usage (exit 2), like any other misconfiguration.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageError{err}
	}
	return err
}
