package daemon

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"syscall"
	"testing"
	"time"
)

type cfg struct{ ok bool }

func parse(args []string, _ func(string) string) (cfg, error) {
	switch {
	case len(args) > 0 && args[0] == "-h":
		return cfg{}, helpErr{}
	case len(args) > 0 && args[0] == "bad":
		return cfg{}, errors.New("invalid configuration: --x must be a number")
	}
	return cfg{ok: true}, nil
}

type helpErr struct{}

func (helpErr) Error() string        { return "Usage of svc" }
func (helpErr) Is(target error) bool { return target == flag.ErrHelp }

func TestRun(t *testing.T) {
	var out, errOut bytes.Buffer
	if got := Run("svc", []string{"-h"}, nil, &out, &errOut, parse, func(context.Context, cfg) error { return nil }); got != ExitOK || out.String() != "Usage of svc" {
		t.Fatalf("help: %d %q", got, out.String())
	}
	if got := Run("svc", []string{"bad"}, nil, &out, &errOut, parse, func(context.Context, cfg) error { return nil }); got != ExitConfig ||
		!strings.Contains(errOut.String(), "svc: invalid configuration") {
		t.Fatalf("bad configuration: %d %q", got, errOut.String())
	}
	if got := Run("svc", nil, nil, &out, &errOut, parse, func(context.Context, cfg) error { return errors.New("boom") }); got != ExitFailed {
		t.Fatalf("failure: %d", got)
	}
	// A SIGTERM ends the run's context; a clean return is status 0.
	got := Run("svc", nil, nil, &out, &errOut, parse, func(ctx context.Context, _ cfg) error {
		go func() {
			time.Sleep(50 * time.Millisecond)
			_ = syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
		}()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("no signal")
		}
	})
	if got != ExitOK {
		t.Fatalf("stopped by SIGTERM: %d %q", got, errOut.String())
	}
}
