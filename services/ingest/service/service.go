// Package service wires the ingest service's parts together: connections,
// schema, streams, the consumer loop and the HTTP endpoints.
package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/assoliment/assoliment/services/ingest/config"
	"github.com/assoliment/assoliment/services/ingest/internal/metrics"
	"github.com/assoliment/assoliment/services/ingest/internal/pipeline"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
	"github.com/assoliment/assoliment/services/platform/httpserver"
	"github.com/assoliment/assoliment/services/platform/logging"
	"github.com/assoliment/assoliment/services/storage"
)

// Run starts the service and blocks until ctx ends and everything held is
// flushed and acknowledged. Stopped while starting (waiting for ClickHouse
// or NATS, say), it returns nil: a stop like any other.
func Run(ctx context.Context, cfg config.Config, logw io.Writer) error {
	log := logging.New(logw, cfg.LogLevel, "ingest")
	err := run(ctx, cfg, log)
	if err != nil && ctx.Err() != nil {
		log.Info("stopped while starting", "err", err)
		return nil
	}
	return err
}

// The garbage collector's settings unless the environment sets them
// (GOGC, GOMEMLIMIT): the decoded events of a batch are short-lived and
// many, and at Go's default the collector took a quarter of the service's
// CPU while draining a backlog; at GCPercent it takes much less, and the
// soft MemoryLimit keeps the process well within the 256 MiB it is sized
// for whatever the messages' sizes.
const (
	GCPercent   = 400
	MemoryLimit = 192 << 20
)

func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(MemoryLimit)
	}
	ch, err := cfg.ClickHouse(ctx, log)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := storage.MigrateServers(ctx, ch, cfg.Cluster, log); err != nil {
		return err
	}
	st := store.New(ch, cfg.MaxLateness, log)
	var sink pipeline.Sink = st
	var replicas *store.Replicas // the replicas of CLICKHOUSE_CLUSTER, when set
	if cfg.Cluster != "" {
		replicas = store.NewReplicas(st, cfg.Cluster)
		defer replicas.Close()
		sink = replicas
	}
	if err := st.PrepareIndex(ctx, time.Now()); err != nil {
		return err
	}
	nc, err := cfg.NATS(ctx, "ingest", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	// A dead letter's acknowledgement lost without a disconnect (a stream
	// leader moving, say) fails its publish after this long, and the batch
	// is tried again (same message id, so no copy), instead of waiting
	// forever with its messages held in progress.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	pcfg := pipeline.Config{
		Stream: cfg.Stream, Consumer: cfg.Consumer, DeadLetterStream: cfg.DeadLetterStream,
		BatchSize: cfg.BatchSize, BatchBytes: int(cfg.BatchBytes), FlushInterval: cfg.FlushInterval,
		MaxLateness: cfg.MaxLateness, AckWait: cfg.AckWait,
		StreamMaxBytes: cfg.StreamMaxBytes, DeadLetterMaxAge: cfg.DeadLetterMaxAge, DeadLetterMaxBytes: cfg.DeadLetterMaxBytes,
		Replicas: cfg.StreamReplicas, Publishers: map[string]bool{},
	}
	for _, p := range cfg.Publishers {
		pcfg.Publishers[p] = true
	}
	cons, err := pipeline.Setup(ctx, js, pcfg, log)
	if err != nil {
		return err
	}
	m := metrics.New(cfg.Publishers...)
	p := pipeline.New(nc, js, cons, sink, m, log, pcfg)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case !nc.IsConnected():
			http.Error(w, "not ready: NATS disconnected", http.StatusServiceUnavailable)
		case !p.Healthy():
			http.Error(w, "not ready: ClickHouse unavailable", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	srv, err := httpserver.Listen(cfg.HTTPAddr, mux)
	if err != nil {
		return err
	}
	log.Info("ingest started", "http", srv.Addr(), "nats", cfg.NATSURL, "clickhouse", cfg.ClickHouseAddr,
		"database", cfg.Database, "clickhouse_version", ch.Version.Version.String(), "stream", cfg.Stream, "consumer", cfg.Consumer)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Run(gctx, log) })
	g.Go(func() error { return p.Run(gctx) })
	g.Go(func() error { maintainIndex(gctx, st, log); return nil })
	if replicas != nil {
		g.Go(func() error { replicas.Maintain(gctx, log); return nil })
	}
	err = g.Wait()
	log.Info("ingest stopped")
	return err
}

// IndexMaintenance is how often the identity index gets the table of a new
// month and drops those no copy can be accepted for any more.
const IndexMaintenance = time.Hour

func maintainIndex(ctx context.Context, st *store.Store, log *slog.Logger) {
	t := time.NewTicker(IndexMaintenance)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := st.PrepareIndex(ctx, time.Now()); err != nil && ctx.Err() == nil {
				log.Error("identity index maintenance failed; trying again in an hour", "err", err)
			}
		}
	}
}
