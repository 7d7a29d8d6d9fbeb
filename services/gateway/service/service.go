// Package service wires the gateway's parts together: tokens, the NATS
// connection, the HTTP server and its endpoints.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assoliment/assoliment/services/gateway/config"
	"github.com/assoliment/assoliment/services/gateway/internal/api"
	"github.com/assoliment/assoliment/services/gateway/internal/keyring"
	"github.com/assoliment/assoliment/services/gateway/internal/metrics"
	"github.com/assoliment/assoliment/services/gateway/internal/publish"
	"github.com/assoliment/assoliment/services/platform/logging"
)

// settle is how long changes to the tokens file are gathered before it is
// read again, so a file being written is read once complete.
const settle = 200 * time.Millisecond

// Run serves until ctx ends, then stops taking requests, finishes those in
// flight (their acknowledgements included) and returns. A value on reload
// (SIGHUP) re-reads the tokens file.
func Run(ctx context.Context, cfg config.Config, logw io.Writer, reload <-chan os.Signal) error {
	log := logging.New(logw, cfg.LogLevel, "gateway")
	m := metrics.New()
	keys := keyring.New(cfg.RateLimit, cfg.RateBurst)
	loader := &keyring.Loader{Path: cfg.TokensFile, Keyring: keys, Log: log, OnReload: func(err error) {
		if err != nil {
			m.Reloads.WithLabelValues("error").Inc()
			return
		}
		m.Reloads.WithLabelValues("ok").Inc()
		publishers := keys.Publishers()
		m.Tokens.Set(float64(len(publishers)))
		for _, p := range publishers {
			m.Publisher(p)
		}
	}}
	if err := loader.Load(); err != nil {
		return fmt.Errorf("tokens file %s: %w", cfg.TokensFile, err)
	}
	if keys.Len() == 0 {
		log.Warn("the tokens file lists no token: every request is refused until one is added", "file", cfg.TokensFile)
	}
	nc, err := cfg.NATS(ctx, "gateway", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	pub, err := publish.New(nc, cfg.Stream, cfg.AckTimeout, cfg.MaxInFlight)
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("/api/v1/events", api.New(api.Config{
		Keyring: keys, Publisher: pub, Metrics: m, Connected: nc.IsConnected,
		MaxBatchEvents: cfg.MaxBatchEvents, MaxBatchBytes: cfg.MaxBatchBytes, MaxLateness: cfg.MaxLateness, Log: log,
	}))
	schemas, schema := api.Schemas()
	mux.Handle("GET /api/v1/schemas", schemas)
	mux.Handle("GET /api/v1/schemas/{type}", schema)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !nc.IsConnected() {
			http.Error(w, "not ready: NATS disconnected", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(api.Problem{Reason: api.ReasonNotFound,
			Detail: fmt.Sprintf("no such endpoint: %s %s; events go to POST /api/v1/events", r.Method, r.URL.Path)})
	})

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("gateway started", "http", ln.Addr().String(), "nats", cfg.NATSURL, "stream", cfg.Stream,
		"tokens", keys.Len(), "rate_limit", cfg.RateLimit, "rate_burst", cfg.RateBurst)

	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { loader.Watch(watchCtx, reload, settle); close(watched) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err = <-served:
		err = fmt.Errorf("http: %w", err)
	case <-ctx.Done():
		err = nil
	}
	// Stop taking requests; those in flight finish, acknowledgements included.
	sctx, cancel := context.WithTimeout(context.Background(), cfg.WriteTimeout+5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", serr)
	}
	stopWatch()
	<-watched
	log.Info("gateway stopped")
	return err
}
