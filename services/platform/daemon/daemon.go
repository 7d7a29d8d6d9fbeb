// Package daemon is the main function every service shares: read the
// configuration, run until SIGINT or SIGTERM, and exit with a status that
// says what happened.
package daemon

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

// Exit statuses of a service.
const (
	ExitOK     = 0 // stopped by a signal, after a graceful shutdown
	ExitFailed = 1 // the service failed
	ExitConfig = 2 // the configuration is invalid
)

// Main parses the configuration with parse (os.Args and os.Getenv), runs
// the service with run until SIGINT or SIGTERM, and exits: -h prints the
// usage and exits 0.
func Main[C any](name string, parse func(args []string, getenv func(string) string) (C, error), run func(ctx context.Context, cfg C) error) {
	os.Exit(Run(name, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, parse, run))
}

// Run is Main without the process: it returns the exit status.
func Run[C any](name string, args []string, getenv func(string) string, stdout, stderr io.Writer,
	parse func(args []string, getenv func(string) string) (C, error), run func(ctx context.Context, cfg C) error) int {
	cfg, err := parse(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, err)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return ExitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return ExitFailed
	}
	return ExitOK
}
