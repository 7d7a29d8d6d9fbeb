// Command simulator publishes simulated municipalities' events to NATS
// JetStream: history, then live events, or benchmark load.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/simulator/config"
	"github.com/assoliment/assoliment/services/simulator/run"
	"github.com/assoliment/assoliment/services/simulator/sim"
)

// Exit statuses: 0 stopped or done, 1 failed while running, 2 bad
// configuration.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	failed := false
	cmd := config.Command(os.Getenv, func(ctx context.Context, cfg config.Config) error {
		log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
		if err := serve(ctx, cfg, log); err != nil {
			log.Error("simulator failed", "error", err)
			failed = true
		}
		return nil
	})
	err := cmd.Run(ctx, os.Args)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "simulator: %v\nRun 'simulator --help' for the settings.\n", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	nc, err := cfg.NATS.Connect(ctx, "assoliment-simulator", 0, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	if err := run.EnsureStream(ctx, js, cfg.Stream); err != nil {
		return err
	}
	if cfg.Mode == config.ModeLoad {
		rep, err := run.Load(ctx, js, run.LoadOptions{
			LoadOptions: sim.LoadOptions{Seed: cfg.Seed, Municipalities: cfg.Municipalities,
				InvalidShare: cfg.InvalidShare, RunID: strconv.FormatInt(time.Now().UnixMilli(), 36)},
			Rate: cfg.Rate, Count: cfg.Count, Duration: cfg.Duration, MaxInFlight: cfg.MaxInFlight, Log: log,
		})
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	start := cfg.Start
	if start.IsZero() {
		start = time.Now().Truncate(time.Second)
	}
	g, err := sim.New(sim.Options{Seed: cfg.Seed, Start: start, Backfill: cfg.Backfill})
	if err != nil {
		return err
	}
	log.Info("simulator starting", "mode", cfg.Mode, "seed", cfg.Seed, "start", start,
		"history_from", g.HistoryStart(), "municipalities", len(g.Municipalities()), "nats_url", cfg.NATS.URL)
	n, err := run.Backfill(ctx, js, g, cfg.MaxInFlight, log)
	if err != nil {
		if ctx.Err() != nil {
			log.Info("stopped during the backfill", "published", n.Published, "acked", n.Acked)
			return nil
		}
		return err
	}
	if n.Failed > 0 {
		log.Warn("some backfill messages were not acknowledged", "failed", n.Failed)
	}
	if cfg.Mode == config.ModeBackfill {
		return nil
	}
	log.Info("live mode", "speed", cfg.Speed)
	n, err = run.Live(ctx, js, g, run.LiveOptions{Speed: cfg.Speed, MaxInFlight: cfg.MaxInFlight, Log: log})
	log.Info("simulator stopped", "live_published", n.Published, "live_acked", n.Acked, "live_failed", n.Failed)
	return err
}
