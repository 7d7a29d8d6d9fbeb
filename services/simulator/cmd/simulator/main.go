// Command simulator publishes simulated municipalities' events to NATS
// JetStream: history, then live events, or benchmark load.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/assoliment/assoliment/services/simulator/config"
	"github.com/assoliment/assoliment/services/simulator/run"
	"github.com/assoliment/assoliment/services/simulator/sim"
)

func main() {
	cfg, err := config.Parse(os.Args[1:], os.Getenv)
	if errors.Is(err, config.ErrHelp) {
		fmt.Print(config.Usage())
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("simulator failed", "error", err)
		os.Exit(1)
	}
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	nc, js, err := run.Connect(cfg.NATSURL, cfg.NATSCreds, "assoliment-simulator")
	if err != nil {
		return err
	}
	defer nc.Close()
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
		"history_from", g.HistoryStart(), "municipalities", len(g.Municipalities()), "nats_url", cfg.NATSURL)
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
