// Package service wires the ingest service's parts together: connections,
// schema, streams, the consumer loop and the HTTP endpoints.
package service

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/assoliment/assoliment/services/ingest/config"
	"github.com/assoliment/assoliment/services/ingest/internal/metrics"
	"github.com/assoliment/assoliment/services/ingest/internal/pipeline"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
	"github.com/assoliment/assoliment/services/ingest/schema"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/httpserver"
	"github.com/assoliment/assoliment/services/platform/logging"
	"github.com/assoliment/assoliment/services/platform/natsconn"
)

// Run starts the service and blocks until ctx ends and everything held is
// flushed and acknowledged.
func Run(ctx context.Context, cfg config.Config, logw io.Writer) error {
	log := logging.New(logw, cfg.LogLevel, "ingest")
	ch, err := connectClickHouse(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := schema.Migrate(ctx, ch); err != nil {
		return err
	}
	natsTLS, err := cfg.TLS.NATS()
	if err != nil {
		return err
	}
	nc, err := natsconn.Connect(ctx, natsconn.Options{URL: cfg.NATSURL, Creds: cfg.NATSCreds, TLS: natsTLS, Name: "ingest"}, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	pcfg := pipeline.Config{
		Stream: cfg.Stream, Consumer: cfg.Consumer, DeadLetterStream: cfg.DeadLetterStream,
		BatchSize: cfg.BatchSize, FlushInterval: cfg.FlushInterval, MaxLateness: cfg.MaxLateness, AckWait: cfg.AckWait,
	}
	cons, err := pipeline.Setup(ctx, js, pcfg)
	if err != nil {
		return err
	}
	m := metrics.New()
	p := pipeline.New(js, cons, store.New(ch), m, log, pcfg)

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
	err = g.Wait()
	log.Info("ingest stopped")
	return err
}

// connectClickHouse retries until the server answers, so the service can
// start before its database.
func connectClickHouse(ctx context.Context, cfg config.Config, log interface {
	Warn(string, ...any)
}) (*chconn.Conn, error) {
	tc, err := cfg.TLS.ClickHouseConfig()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		ch, err := chconn.Open(ctx, chconn.Options{Addr: cfg.ClickHouseAddr, Database: cfg.Database, User: cfg.User, Password: cfg.Password, TLS: tc})
		if err == nil {
			return ch, nil
		}
		if attempt >= 60 {
			return nil, err
		}
		log.Warn("clickhouse not reachable yet", "addr", cfg.ClickHouseAddr, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
