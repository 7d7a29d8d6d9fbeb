// Package cli is kpictl's command line, built on github.com/urfave/cli/v3:
// the commands, their flags with environment-variable equivalents, and one
// convention for all of them. Results go to standard output (as JSON with
// --json), diagnostics and errors to standard error, and the exit status
// is one of the Exit constants.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/urfave/cli/v3"
)

// Exit statuses, the same for every command.
const (
	ExitOK = 0
	// ExitFailed: something could not be done: a file could not be read,
	// the server could not be reached or refused, a message was not
	// acknowledged, the municipality is unknown.
	ExitFailed = 1
	// ExitUsage: the command line or the environment is wrong: an unknown
	// command or flag, a bad value, a missing argument.
	ExitUsage = 2
	// ExitInvalid: everything ran, but events are invalid: validate found
	// some, or publish skipped some.
	ExitInvalid = 3
)

// Env is what a command runs with.
type Env struct {
	Args   []string // without the program name
	Getenv func(string) string
	Stdin  io.Reader // read for the file "-"
	Stdout io.Writer
	Stderr io.Writer
	// Terminal is true when Stderr is a terminal: publish draws a progress
	// bar instead of progress lines.
	Terminal bool
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// HTTP is the client for the evaluator (a 30-second client when nil).
	HTTP *http.Client
}

// Run runs one command line and returns the exit status.
func Run(ctx context.Context, e Env) int {
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.HTTP == nil {
		e.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	return e.exit(New(e).Run(ctx, append([]string{"kpictl"}, e.Args...)))
}

// New is kpictl's command tree.
func New(e Env) *cli.Command {
	root := &cli.Command{
		Name:    "kpictl",
		Usage:   "the Assoliment command-line tool for providers and operators",
		Version: Version(),
		Description: `Exit status: 0 success; 1 failure (an unreadable file, a server that cannot be
reached or refuses, a message not acknowledged); 2 usage error (the command
line or the environment); 3 invalid events (validate found some, publish
skipped some). Results go to standard output, as JSON with --json;
diagnostics and errors to standard error.`,
		Commands: []*cli.Command{
			validateCommand(e), publishCommand(e), dlqCommand(e), assessmentCommand(e), reportCommand(e), tokenCommand(e),
		},
		EnableShellCompletion: true,
		ConfigureShellCompletionCommand: func(c *cli.Command) {
			c.Hidden = false
			c.Usage = "print the shell completion script for bash, zsh, fish or pwsh"
		},
		Action:    needsCommand,
		Reader:    e.Stdin,
		Writer:    e.Stdout,
		ErrWriter: e.Stderr,
		// Errors are reported, and turned into an exit status, by Run.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
	}
	_ = root.Walk(func(c *cli.Command) error {
		c.OnUsageError = func(_ context.Context, c *cli.Command, err error, _ bool) error {
			return usageError{command: c.FullName(), err: err}
		}
		return nil
	})
	return root
}

// needsCommand is the action of a command that only groups others: help
// when called alone, a usage error with anything else.
func needsCommand(_ context.Context, cmd *cli.Command) error {
	if cmd.Args().Present() {
		return usagef(cmd, "unknown command %q", cmd.Args().First())
	}
	if cmd.Root() == cmd {
		return cli.ShowRootCommandHelp(cmd)
	}
	var names []string
	for _, c := range cmd.VisibleCommands() {
		names = append(names, c.Name)
	}
	return usagef(cmd, "%s needs a command: %v", cmd.Name, names)
}

// status ends a command with an exit status other than ExitOK; err, when
// not nil, is printed on standard error.
type status struct {
	code int
	err  error
}

func (s status) Error() string {
	if s.err == nil {
		return fmt.Sprintf("exit status %d", s.code)
	}
	return s.err.Error()
}

func (s status) Unwrap() error { return s.err }

// failed is ExitFailed with its reason.
func failed(err error) error { return status{code: ExitFailed, err: err} }

// usageError is a command line or environment that cannot run.
type usageError struct {
	command string // e.g. "kpictl dlq list", for the help hint
	err     error
}

func (u usageError) Error() string { return u.err.Error() }

func usagef(cmd *cli.Command, format string, args ...any) error {
	return usageError{command: cmd.FullName(), err: fmt.Errorf(format, args...)}
}

func (e Env) exit(err error) int {
	var s status
	var u usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &s):
		if s.err != nil {
			fmt.Fprintf(e.Stderr, "kpictl: %v\n", s.err)
		}
		return s.code
	case errors.As(err, &u):
		fmt.Fprintf(e.Stderr, "kpictl: %v\nRun '%s --help' for usage.\n", u.err, u.command)
	default:
		// The library's own errors: a variable it could not parse.
		fmt.Fprintf(e.Stderr, "kpictl: %v\nRun 'kpictl --help' for usage.\n", err)
	}
	return ExitUsage
}

// logger is for diagnostics of the NATS connection: errors only, on
// standard error, without timestamps.
func (e Env) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{
		Level: slog.LevelError,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// version is set when building a release:
//
//	go build -ldflags "-X github.com/assoliment/assoliment/services/kpictl/cli.version=v1.2.0" ./cmd/kpictl
var version string

// Version is the version set when building, else the module version and
// the source revision the Go toolchain records (in a workspace, only with
// go build -buildvcs=true).
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = ", modified"
			}
		}
	}
	if rev == "" {
		return v
	}
	if v == "(devel)" {
		v = "devel"
	}
	return fmt.Sprintf("%s, revision %.12s of %s%s", v, rev, at, modified)
}
