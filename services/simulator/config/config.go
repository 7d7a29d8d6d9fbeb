// Package config reads the simulator's settings from flags with
// environment-variable equivalents (a flag wins over its variable, the
// variable over the default), with github.com/urfave/cli/v3. Each error
// names the flag or variable and the expected form.
package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/cliflags"
	"github.com/assoliment/assoliment/services/platform/config"
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
	NATS   cliflags.NATS
	Stream string

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

const description = `Simulates Catalan municipalities publishing contract v1 events to NATS
JetStream: a backfill of history as fast as the broker acks it, then live
events at the pace of each service's reporting interval. --mode load sends
benchmark load instead and prints a JSON report on standard output.

Against the secure broker (deploy/nats/secure) the simulator logs in as the
operator (--creds operator.nk --tls-ca ca.pem): it publishes for every
municipality and creates the main stream when it is missing.

Examples:
  simulator                                   # 60 days of history, then live
  simulator --mode backfill --backfill 90d --seed 7
  simulator --start 2026-11-01T00:00:00Z --speed 600   # replay to now at 600x, then live
  simulator --mode load --rate 5000 --duration 1m --invalid-share 0.01 --municipalities 50`

// Command is the simulator's command line; run is called with the
// configuration once every setting is read and checked. getenv looks up
// environment variables (os.Getenv in main, a map in tests). Run returns
// run's error, or the configuration's: the first bad value, naming its
// flag or variable and the expected form.
func Command(getenv func(string) string, run func(context.Context, Config) error) *cli.Command {
	var c Config
	env := func(k string) cli.ValueSourceChain { return cliflags.Env(getenv, k) }
	str := func(name, envKey, def, usage string, check func(string) error) *cli.StringFlag {
		return &cli.StringFlag{Name: name, Value: def, Usage: usage, Sources: env(envKey), Validator: check, ValidateDefaults: true}
	}
	flags := append(cliflags.NATSFlags(&c.NATS, getenv),
		str("stream", "SIMULATOR_STREAM", contract.Stream, "`NAME` of the main stream, created with the platform's settings if missing",
			cliflags.Into(&c.Stream, cliflags.Checked(config.Identifier))),
		str("mode", "SIMULATOR_MODE", ModeRun, "`MODE`: run (backfill, then live), backfill (backfill and exit) or load (benchmark load)",
			cliflags.Into(&c.Mode, cliflags.OneOf(ModeRun, ModeBackfill, ModeLoad))),
		str("seed", "SIMULATOR_SEED", "1", "`SEED` of every random choice, a whole number: the same seed and start give the same events",
			cliflags.Into(&c.Seed, cliflags.Int64)),
		str("start", "SIMULATOR_START", "", "`TIME` the history ends and live publishing begins, RFC 3339 (default: now)",
			cliflags.Into(&c.Start, cliflags.Time)),
		str("backfill", "SIMULATOR_BACKFILL", "60d", "`DURATION` of history published before live mode, up to 390d (60d or more for level 5)",
			cliflags.Into(&c.Backfill, cliflags.DurationIn(0, sim.MaxBackfill))),
		str("speed", "SIMULATOR_SPEED", "1", "live mode: `SPEED`, simulated seconds per real second while the simulated clock is behind the real one (1 to 100000)",
			cliflags.Into(&c.Speed, cliflags.FloatIn(1, 100000))),
		str("max-in-flight", "SIMULATOR_MAX_IN_FLIGHT", "1024", "`N` messages awaiting a broker ack at most (1 to 65536)",
			cliflags.Into(&c.MaxInFlight, cliflags.IntIn(1, 65536))),
		str("rate", "SIMULATOR_RATE", "0", "load mode: `RATE` in events per second, 0 for as fast as possible",
			cliflags.Into(&c.Rate, cliflags.FloatIn(0, math.MaxFloat64))),
		str("count", "SIMULATOR_COUNT", "0", "load mode: `N` messages to send after the catalogue, 0 for no limit",
			cliflags.Into(&c.Count, func(s string) (int64, error) {
				n, err := cliflags.Int64(s)
				if err != nil || n < 0 {
					return 0, errors.New("must be a whole number, 0 for no limit")
				}
				return n, nil
			})),
		str("duration", "SIMULATOR_DURATION", "0", "load mode: `DURATION` to send for, 0 for no limit",
			cliflags.Into(&c.Duration, cliflags.DurationIn(0, math.MaxInt64))),
		str("invalid-share", "SIMULATOR_INVALID_SHARE", "0", "load mode: `SHARE` of invalid messages, 0 to 1, one rejection reason after another",
			cliflags.Into(&c.InvalidShare, cliflags.FloatIn(0, 1))),
		str("municipalities", "SIMULATOR_MUNICIPALITIES", "10", "load mode: `N` municipalities to spread the load over (1 to 100000)",
			cliflags.Into(&c.Municipalities, cliflags.IntIn(1, 100000))),
		str("log-level", "SIMULATOR_LOG_LEVEL", "info", "`LEVEL` of logging: debug, info, warn or error",
			cliflags.Into(&c.LogLevel, func(s string) (slog.Level, error) {
				var l slog.Level
				if l.UnmarshalText([]byte(s)) != nil {
					return l, errors.New("must be debug, info, warn or error")
				}
				return l, nil
			})),
	)
	return &cli.Command{
		Name:        "simulator",
		Usage:       "publish simulated municipalities' events to NATS JetStream",
		Description: description,
		Flags:       flags,
		HideVersion: true,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.Args().Present() {
				return fmt.Errorf("the simulator takes no arguments, got %q", cmd.Args().Slice())
			}
			if c.Mode == ModeLoad && c.Count == 0 && c.Duration == 0 {
				return errors.New("--count / SIMULATOR_COUNT or --duration / SIMULATOR_DURATION: load mode needs at least one of them above 0")
			}
			return run(ctx, c)
		},
		// Errors are the caller's to report and turn into an exit status.
		OnUsageError:   func(_ context.Context, _ *cli.Command, err error, _ bool) error { return err },
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
	}
}

// Parse reads the configuration from command-line arguments (without the
// program name) and environment variables, without running anything.
func Parse(args []string, getenv func(string) string) (Config, error) {
	var got Config
	cmd := Command(getenv, func(_ context.Context, c Config) error { got = c; return nil })
	cmd.Writer, cmd.ErrWriter = io.Discard, io.Discard
	err := cmd.Run(context.Background(), append([]string{"simulator"}, args...))
	return got, err
}
