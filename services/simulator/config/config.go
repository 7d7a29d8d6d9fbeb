// Package config reads the simulator's settings from flags and environment
// variables: a flag wins over its variable, the variable over the default.
// Every problem is reported at once, each naming the flag, the variable and
// the expected form.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/simulator/sim"
)

// Modes of the simulator.
const (
	ModeRun      = "run"      // backfill, then publish live until stopped
	ModeBackfill = "backfill" // backfill and exit
	ModeLoad     = "load"     // load for benchmarks, then a JSON report
)

// Config is the simulator's configuration.
type Config struct {
	NATSURL   string
	NATSCreds string
	Stream    string

	Mode        string
	Seed        int64
	Start       time.Time // zero: the moment the simulator starts
	Backfill    time.Duration
	Speed       float64
	MaxInFlight int

	Rate           float64       // load: events per second, 0 = as fast as possible
	Count          int64         // load: messages to send, 0 = no limit
	Duration       time.Duration // load: how long to send, 0 = no limit
	InvalidShare   float64       // load: share of invalid messages
	Municipalities int           // load: municipalities to spread the load over

	LogLevel slog.Level
}

// ErrHelp is returned by Parse when --help was asked for; print Usage.
var ErrHelp = flag.ErrHelp

type option struct {
	flag, env, def, form, usage string
	apply                       func(c *Config, v string) error
}

var options = []option{
	{"nats-url", "NATS_URL", "nats://127.0.0.1:4222", "a NATS URL such as nats://host:4222 (comma-separated for a cluster)",
		"NATS server to publish to", func(c *Config, v string) error {
			for _, u := range strings.Split(v, ",") {
				p, err := url.Parse(strings.TrimSpace(u))
				if err != nil || p.Host == "" || !(p.Scheme == "nats" || p.Scheme == "tls" || p.Scheme == "ws" || p.Scheme == "wss") {
					return errors.New("bad URL")
				}
			}
			c.NATSURL = v
			return nil
		}},
	{"nats-creds", "NATS_CREDS", "", "a path to a NATS credentials file, or empty",
		"NATS credentials file (optional)", func(c *Config, v string) error { c.NATSCreds = v; return nil }},
	{"stream", "SIMULATOR_STREAM", contract.Stream, "a JetStream stream name (letters, digits, - and _)",
		"main stream, created with the platform's settings if missing", func(c *Config, v string) error {
			if v == "" || strings.ContainsAny(v, ".*> \t") {
				return errors.New("bad name")
			}
			c.Stream = v
			return nil
		}},
	{"mode", "SIMULATOR_MODE", ModeRun, "run, backfill or load",
		"run: backfill then live; backfill: backfill and exit; load: benchmark load", func(c *Config, v string) error {
			switch v {
			case ModeRun, ModeBackfill, ModeLoad:
				c.Mode = v
				return nil
			}
			return errors.New("bad mode")
		}},
	{"seed", "SIMULATOR_SEED", "1", "a whole number",
		"seed of every random choice: the same seed and start give the same events", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			c.Seed = n
			return err
		}},
	{"start", "SIMULATOR_START", "", "an RFC 3339 time such as 2026-11-20T12:00:00Z, or empty for now",
		"instant the history ends and live publishing begins", func(c *Config, v string) error {
			if v == "" {
				return nil
			}
			t, err := time.Parse(time.RFC3339, v)
			c.Start = t
			return err
		}},
	{"backfill", "SIMULATOR_BACKFILL", "60d", "a duration such as 60d or 1440h, from 0 to 390d",
		"history published before live mode (60 days or more for level 5)", func(c *Config, v string) error {
			d, err := ParseDuration(v)
			if err != nil || d < 0 || d > sim.MaxBackfill {
				return errors.New("out of range")
			}
			c.Backfill = d
			return nil
		}},
	{"speed", "SIMULATOR_SPEED", "1", "a number from 1 to 100000",
		"live mode: simulated seconds per real second while the simulated clock is behind the real one", func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 1 && f <= 100000) {
				return errors.New("out of range")
			}
			c.Speed = f
			return nil
		}},
	{"max-in-flight", "SIMULATOR_MAX_IN_FLIGHT", "1024", "a whole number from 1 to 65536",
		"messages awaiting a broker ack at most", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 65536 {
				return errors.New("out of range")
			}
			c.MaxInFlight = n
			return nil
		}},
	{"rate", "SIMULATOR_RATE", "0", "a number of events per second, 0 for as fast as possible",
		"load mode: events per second", func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				return errors.New("out of range")
			}
			c.Rate = f
			return nil
		}},
	{"count", "SIMULATOR_COUNT", "0", "a whole number, 0 for no limit",
		"load mode: messages to send after the catalogue", func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return errors.New("out of range")
			}
			c.Count = n
			return nil
		}},
	{"duration", "SIMULATOR_DURATION", "0", "a duration such as 30s or 5m, 0 for no limit",
		"load mode: how long to send", func(c *Config, v string) error {
			d, err := ParseDuration(v)
			if err != nil || d < 0 {
				return errors.New("out of range")
			}
			c.Duration = d
			return nil
		}},
	{"invalid-share", "SIMULATOR_INVALID_SHARE", "0", "a number from 0 to 1",
		"load mode: share of invalid messages, one rejection reason after another", func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f <= 1) {
				return errors.New("out of range")
			}
			c.InvalidShare = f
			return nil
		}},
	{"municipalities", "SIMULATOR_MUNICIPALITIES", "10", "a whole number from 1 to 100000",
		"load mode: municipalities to spread the load over", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 100000 {
				return errors.New("out of range")
			}
			c.Municipalities = n
			return nil
		}},
	{"log-level", "SIMULATOR_LOG_LEVEL", "info", "debug, info, warn or error",
		"log level", func(c *Config, v string) error {
			return c.LogLevel.UnmarshalText([]byte(v))
		}},
}

// Parse reads the configuration from command-line arguments (without the
// program name) and environment variables.
func Parse(args []string, getenv func(string) string) (Config, error) {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	raw := make([]*string, len(options))
	for i, o := range options {
		raw[i] = fs.String(o.flag, o.def, o.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, ErrHelp
		}
		return Config{}, fmt.Errorf("%v\n\n%s", err, Usage())
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q\n\n%s", fs.Args(), Usage())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var c Config
	var errs []error
	for i, o := range options {
		v, from := o.def, "default"
		switch {
		case set[o.flag]:
			v, from = *raw[i], "--"+o.flag
		case getenv != nil && getenv(o.env) != "":
			v, from = getenv(o.env), o.env
		}
		if err := o.apply(&c, strings.TrimSpace(v)); err != nil {
			errs = append(errs, fmt.Errorf("--%s / %s: got %q (from %s), want %s", o.flag, o.env, v, from, o.form))
		}
	}
	if c.Mode == ModeLoad && c.Count == 0 && c.Duration == 0 {
		errs = append(errs, errors.New("--count / SIMULATOR_COUNT or --duration / SIMULATOR_DURATION: load mode needs at least one of them above 0"))
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", errors.Join(errs...))
	}
	return c, nil
}

// Usage describes every flag with its variable, default and form.
func Usage() string {
	var b strings.Builder
	b.WriteString(`Usage: simulator [flags]

Simulates Catalan municipalities publishing contract v1 events to NATS
JetStream: a backfill of history as fast as the broker acks it, then live
events at the pace of each service's reporting interval. --mode load sends
benchmark load instead and prints a JSON report.

Examples:
  simulator                                   # 60 days of history, then live
  simulator --mode backfill --backfill 90d --seed 7
  simulator --start 2026-11-01T00:00:00Z --speed 600   # replay to now at 600x, then live
  simulator --mode load --rate 5000 --duration 1m --invalid-share 0.01 --municipalities 50

Flags (each also read from the environment variable shown):
`)
	for _, o := range options {
		def := o.def
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(&b, "  --%s  (%s, default %s)\n      %s; %s\n", o.flag, o.env, def, o.usage, o.form)
	}
	return b.String()
}

// ParseDuration reads a Go duration ("90m", "1440h") or whole days ("60d",
// also combined as "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, nil
	}
	var days int64
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("duration %q: bad number of days", s)
		}
		days, s = n, s[i+1:]
		if s == "" {
			return time.Duration(days) * sim.Day, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration: %w", err)
	}
	return time.Duration(days)*sim.Day + d, nil
}
