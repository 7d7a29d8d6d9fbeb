// Package service wires the evaluator's parts: connections, the engine, the
// API, the metrics and the level-change history.
package service

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/assoliment/assoliment/services/evaluator/config"
	"github.com/assoliment/assoliment/services/evaluator/internal/api"
	"github.com/assoliment/assoliment/services/evaluator/internal/collector"
	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/history"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/evaluator/internal/reader"
	"github.com/assoliment/assoliment/services/evaluator/internal/report"
	"github.com/assoliment/assoliment/services/platform/httpserver"
	"github.com/assoliment/assoliment/services/platform/logging"
	"github.com/assoliment/assoliment/services/storage"
)

// MemoryLimit is the garbage collector's soft memory limit unless the
// environment sets GOMEMLIMIT: an evaluation of every municipality keeps
// about half of what it allocates until it ends, and at Go's default the
// heap doubled that; the limit keeps the process within the 256 MiB it is
// sized for (docs/benchmarks.md).
const MemoryLimit = 192 << 20

// Run starts the evaluator and blocks until ctx ends.
func Run(ctx context.Context, cfg config.Config, logw io.Writer) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(MemoryLimit)
	}
	log := logging.New(logw, cfg.LogLevel, "evaluator")
	criteria := maturity.DefaultConfig()
	if cfg.CriteriaFile != "" {
		var err error
		if criteria, err = maturity.LoadConfig(cfg.CriteriaFile); err != nil {
			return err
		}
	}
	ch, err := cfg.ClickHouse(ctx, log)
	if err != nil {
		return err
	}
	defer ch.Close()
	db := storage.NewConn(ch)
	// The evaluator may start before the ingest service: either applies
	// the migrations (on every replica of CLICKHOUSE_CLUSTER it reaches).
	if err := storage.MigrateServers(ctx, ch, cfg.Cluster, log); err != nil {
		return err
	}
	nc, err := cfg.NATS(ctx, "evaluator", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	hist := history.New(db, js)
	if err := hist.EnsureStream(ctx, cfg.StreamReplicas); err != nil {
		return err
	}
	evals := collector.NewEvaluations()
	rd := reader.New(db)
	if err := rd.DropLeftovers(ctx); err != nil {
		log.Warn("leftover tables not dropped", "err", err)
	}
	eng := engine.New(rd, hist, evals, criteria, log)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.New(eng, criteria), evals.Duration, evals.Errors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	loc, err := time.LoadLocation(cfg.ReportTimeZone)
	if err != nil {
		return fmt.Errorf("report time zone: %w", err)
	}
	reports := report.New(db, loc, criteria.MinSamples)
	api.Routes(mux, eng, api.Options{MaxOnDemand: cfg.MaxOnDemand, Reports: reports}, log)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv, err := httpserver.Listen(cfg.HTTPAddr, httpserver.ReadOnly(mux))
	if err != nil {
		return err
	}
	log.Info("evaluator started", "http", srv.Addr(), "interval", cfg.Interval.String(), "clickhouse", cfg.ClickHouseAddr,
		"database", cfg.Database, "window", criteria.Window.String())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx, log) })
	g.Go(func() error { eng.Run(gctx, cfg.Interval); return nil })
	err = g.Wait()
	log.Info("evaluator stopped")
	return err
}
