// Package config reads kpictl's command line: the command, its arguments
// and flags, with environment-variable equivalents for the connection
// settings (a flag wins over its variable, the variable over the default).
// Every problem is reported at once, each naming the flag or variable and
// the expected form.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

// Commands.
const (
	CmdValidate   = "validate"
	CmdPublish    = "publish"
	CmdDLQList    = "dlq list"
	CmdDLQReplay  = "dlq replay"
	CmdAssessment = "assessment"
)

// Config is one kpictl invocation.
type Config struct {
	Command string
	Args    []string // files, or the municipality

	NATSURL      string
	NATSCreds    string
	EvaluatorURL string

	// validate and publish
	Subject      string        // validate as if published on this subject ("" = from each envelope)
	Now          time.Time     // clock for the time rules (zero = the current clock)
	MaxLateness  time.Duration // oldest accepted event time (contract default when zero)
	AllowInvalid bool          // publish: send invalid events too
	MaxInFlight  int           // publish: messages awaiting an ack at most

	// dlq
	DLQStream string
	Reason    string
	Limit     int
	Seqs      []uint64
	DryRun    bool

	// assessment
	At   time.Time
	JSON bool // assessment and dlq list: print JSON
}

// HelpError carries the help text asked for with --help or "help".
type HelpError struct{ Text string }

func (e *HelpError) Error() string { return e.Text }

// UsageError is a command line that cannot be run.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Parse reads the command line (without the program name).
func Parse(args []string, getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		if len(args) > 1 {
			return Parse(append(args[1:], "--help"), getenv)
		}
		return Config{}, &HelpError{Text: mainUsage}
	}
	cmd := args[0]
	rest := args[1:]
	if cmd == "dlq" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			if len(rest) > 0 && isHelp(rest[0]) {
				return Config{}, &HelpError{Text: dlqUsage}
			}
			return Config{}, &UsageError{Msg: "dlq needs a subcommand: list or replay\n\n" + dlqUsage}
		}
		cmd, rest = "dlq "+rest[0], rest[1:]
	}
	spec, ok := commands[cmd]
	if !ok {
		return Config{}, &UsageError{Msg: fmt.Sprintf("unknown command %q\n\n%s", cmd, mainUsage)}
	}
	c := Config{Command: cmd}
	fs := flag.NewFlagSet("kpictl "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var errs []error
	raw := map[string]*string{}
	for _, name := range spec.flags {
		f := flagDefs[name]
		if f.boolean {
			fs.Bool(name, false, f.usage)
		} else if name == "seq" {
			fs.Func(name, f.usage, func(v string) error {
				for _, p := range strings.Split(v, ",") {
					n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 64)
					if err != nil || n == 0 {
						errs = append(errs, fmt.Errorf("--seq: got %q, want a stream sequence number (1 or more), repeatable or comma-separated", v))
						return nil
					}
					c.Seqs = append(c.Seqs, n)
				}
				return nil
			})
		} else {
			raw[name] = fs.String(name, "", f.usage)
		}
	}
	// Flags may come before, between or after the arguments.
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return Config{}, &HelpError{Text: spec.usage}
			}
			return Config{}, &UsageError{Msg: fmt.Sprintf("%v\n\n%s", err, spec.usage)}
		}
		if fs.NArg() == 0 {
			break
		}
		c.Args = append(c.Args, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range spec.flags {
		f := flagDefs[name]
		switch {
		case f.boolean:
			v := fs.Lookup(name).Value.String() == "true"
			switch name {
			case "allow-invalid":
				c.AllowInvalid = v
			case "dry-run":
				c.DryRun = v
			case "json":
				c.JSON = v
			}
			continue
		case name == "seq":
			continue
		}
		v, from := f.def, "default"
		if set[name] {
			v, from = *raw[name], "--"+name
		} else if f.env != "" && getenv(f.env) != "" {
			v, from = getenv(f.env), f.env
		}
		v = strings.TrimSpace(v)
		if err := f.apply(&c, v); err != nil {
			key := "--" + name
			if f.env != "" {
				key += " / " + f.env
			}
			errs = append(errs, fmt.Errorf("%s: got %q (from %s), want %s", key, v, from, f.form))
		}
	}
	if cmd == CmdDLQList && !set["limit"] {
		c.Limit = 100 // replay has no limit unless asked
	}
	switch {
	case len(c.Args) < spec.minArgs:
		errs = append(errs, fmt.Errorf("%s needs %s", cmd, spec.argsText))
	case spec.maxArgs >= 0 && len(c.Args) > spec.maxArgs:
		errs = append(errs, fmt.Errorf("%s takes %s, got %q", cmd, spec.argsText, c.Args))
	}
	if cmd == CmdAssessment && len(c.Args) == 1 && !contract.ValidSlug(c.Args[0]) {
		errs = append(errs, fmt.Errorf("municipality %q: want a municipality id such as sabadell or sant-cugat-del-valles", c.Args[0]))
	}
	if len(errs) > 0 {
		return Config{}, &UsageError{Msg: errors.Join(errs...).Error() + "\n\nRun 'kpictl " + cmd + " --help' for usage."}
	}
	return c, nil
}

func isHelp(s string) bool { return s == "-h" || s == "--help" || s == "-help" }

type flagDef struct {
	env, def, form, usage string
	boolean               bool
	apply                 func(c *Config, v string) error
}

func natsURL(c *Config, v string) error {
	for _, u := range strings.Split(v, ",") {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.Host == "" || !(p.Scheme == "nats" || p.Scheme == "tls" || p.Scheme == "ws" || p.Scheme == "wss") {
			return errors.New("bad URL")
		}
	}
	c.NATSURL = v
	return nil
}

func rfc3339(dst *time.Time) func(*Config, string) error {
	return func(_ *Config, v string) error {
		if v == "" {
			return nil
		}
		t, err := time.Parse(time.RFC3339, v)
		*dst = t
		return err
	}
}

var flagDefs = map[string]flagDef{
	"nats-url": {env: "NATS_URL", def: "nats://127.0.0.1:4222", form: "a NATS URL such as nats://host:4222",
		usage: "NATS server", apply: natsURL},
	"nats-creds": {env: "NATS_CREDS", form: "a path to a NATS credentials file",
		usage: "NATS credentials file (optional)", apply: func(c *Config, v string) error { c.NATSCreds = v; return nil }},
	"evaluator-url": {env: "EVALUATOR_URL", def: "http://127.0.0.1:8080", form: "an http(s) URL such as http://evaluator:8080",
		usage: "evaluator API base URL", apply: func(c *Config, v string) error {
			p, err := url.Parse(v)
			if err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
				return errors.New("bad URL")
			}
			c.EvaluatorURL = strings.TrimRight(v, "/")
			return nil
		}},
	"subject": {form: "smartcity.<municipality>.<publisher>.<kind>",
		usage: "judge every event as if published on this subject (default: the subject its envelope implies)",
		apply: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			if _, err := contract.ParseSubject(v); err != nil {
				return err
			}
			c.Subject = v
			return nil
		}},
	"now": {form: "an RFC 3339 time such as 2026-11-20T12:00:00Z",
		usage: "clock for the time rules (default: the current time)",
		apply: func(c *Config, v string) error { return rfc3339(&c.Now)(c, v) }},
	"max-lateness": {def: "400d", form: "a duration such as 400d or 72h",
		usage: "oldest accepted event time, as configured on the platform",
		apply: func(c *Config, v string) error {
			d, err := parseDuration(v)
			if err != nil || d <= 0 {
				return errors.New("bad duration")
			}
			c.MaxLateness = d
			return nil
		}},
	"allow-invalid": {boolean: true, usage: "publish invalid events too (to exercise dead-letter handling)"},
	"max-in-flight": {def: "256", form: "a whole number from 1 to 65536", usage: "messages awaiting a broker ack at most",
		apply: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65536 {
				return errors.New("out of range")
			}
			c.MaxInFlight = n
			return nil
		}},
	"stream": {def: contract.DeadLetterStream, form: "a stream name", usage: "dead-letter stream",
		apply: func(c *Config, v string) error {
			if v == "" || strings.ContainsAny(v, ".*> \t") {
				return errors.New("bad name")
			}
			c.DLQStream = v
			return nil
		}},
	"reason": {form: "one of " + reasonList(), usage: "only dead letters rejected for this reason",
		apply: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			for _, r := range contract.Reasons {
				if string(r) == v {
					c.Reason = v
					return nil
				}
			}
			return errors.New("unknown reason")
		}},
	"limit": {form: "a whole number, 0 for no limit", usage: "at most this many dead letters",
		apply: func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return errors.New("out of range")
			}
			c.Limit = n
			return nil
		}},
	"seq":     {usage: "only the dead letter with this DLQ stream sequence (repeatable, or comma-separated)"},
	"dry-run": {boolean: true, usage: "show what would be replayed; change nothing"},
	"json":    {boolean: true, usage: "print JSON instead of a table"},
	"at": {form: "an RFC 3339 time such as 2026-11-20T12:00:00Z", usage: "evaluate at this instant instead of the latest evaluation",
		apply: func(c *Config, v string) error { return rfc3339(&c.At)(c, v) }},
}

func reasonList() string {
	s := make([]string, len(contract.Reasons))
	for i, r := range contract.Reasons {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// parseDuration reads a Go duration or whole days ("400d").
func parseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

type commandSpec struct {
	flags            []string
	minArgs, maxArgs int
	argsText         string
	usage            string
}

var commands = map[string]commandSpec{
	CmdValidate: {flags: []string{"subject", "now", "max-lateness"}, minArgs: 1, maxArgs: -1,
		argsText: "one or more FILE arguments", usage: validateUsage},
	CmdPublish: {flags: []string{"nats-url", "nats-creds", "subject", "now", "max-lateness", "allow-invalid", "max-in-flight"},
		minArgs: 1, maxArgs: -1, argsText: "one or more FILE arguments", usage: publishUsage},
	CmdDLQList: {flags: []string{"nats-url", "nats-creds", "stream", "reason", "limit", "json"},
		maxArgs: 0, argsText: "no arguments", usage: dlqListUsage},
	CmdDLQReplay: {flags: []string{"nats-url", "nats-creds", "stream", "reason", "limit", "seq", "dry-run"},
		maxArgs: 0, argsText: "no arguments", usage: dlqReplayUsage},
	CmdAssessment: {flags: []string{"evaluator-url", "at", "json"}, minArgs: 1, maxArgs: 1,
		argsText: "one MUNICIPALITY argument", usage: assessmentUsage},
}
