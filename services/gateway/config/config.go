// Package config reads the HTTP gateway's settings from flags and
// environment variables.
package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/connect"
	"github.com/assoliment/assoliment/services/platform/logging"
)

// Config of the gateway.
type Config struct {
	connect.Settings // NATS only
	HTTPAddr         string
	TokensFile       string
	Stream           string

	RateLimit float64 // events per second per token
	RateBurst int     // events a token may send at once above its rate

	MaxBatchEvents, MaxBatchBytes, MaxHeaderBytes int

	ReadHeaderTimeout, ReadTimeout, WriteTimeout time.Duration
	AckTimeout                                   time.Duration
	MaxInFlight                                  int
	MaxLateness                                  time.Duration
	LogLevel                                     string
}

// Parse reads args and the environment (getenv); every problem is listed.
func Parse(args []string, getenv func(string) string) (Config, error) {
	var c Config
	s := config.New("gateway", getenv)
	s.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", "127.0.0.1:8082", "address of the HTTP API, /metrics, /healthz and /readyz", config.HostPort)
	connect.RegisterNATS(s, &c.Settings)
	s.String(&c.TokensFile, "tokens-file", "GATEWAY_TOKENS_FILE", "", "YAML file of the publishers' tokens (hashes), re-read when it changes or on SIGHUP", nonEmpty)
	s.String(&c.Stream, "stream", "STREAM", contract.Stream, "JetStream stream that must store every event (its acknowledgement is awaited)", config.Identifier)
	s.Float(&c.RateLimit, "rate-limit", "RATE_LIMIT", 1000, "events per second each token may send (a batch counts as its number of events)", 0.001, 1e7)
	s.Int(&c.RateBurst, "rate-burst", "RATE_BURST", 2000, "events a token may send at once above its rate; at least --max-batch-events", 1, 1e8)
	s.Int(&c.MaxBatchEvents, "max-batch-events", "MAX_BATCH_EVENTS", 1000, "most events in one batch request", 1, 100000)
	s.Int(&c.MaxBatchBytes, "max-batch-bytes", "MAX_BATCH_BYTES", 4<<20, "largest batch request body, in bytes", contract.MaxMessageSize, 64<<20)
	s.Int(&c.MaxHeaderBytes, "max-header-bytes", "MAX_HEADER_BYTES", 16<<10, "largest request line and headers, in bytes", 4<<10, 1<<20)
	s.Duration(&c.ReadHeaderTimeout, "read-header-timeout", "READ_HEADER_TIMEOUT", "5s", "time a client has to send the request headers", 100*time.Millisecond, time.Minute)
	s.Duration(&c.ReadTimeout, "read-timeout", "READ_TIMEOUT", "30s", "time a client has to send a whole request", time.Second, 10*time.Minute)
	s.Duration(&c.WriteTimeout, "write-timeout", "WRITE_TIMEOUT", "60s", "time from the end of the request headers to the end of the answer; above --ack-timeout", time.Second, 10*time.Minute)
	s.Duration(&c.AckTimeout, "ack-timeout", "ACK_TIMEOUT", "10s", "how long to wait for JetStream's acknowledgement before answering 503", 100*time.Millisecond, 5*time.Minute)
	s.Int(&c.MaxInFlight, "max-in-flight", "MAX_IN_FLIGHT", 4096, "events published and awaiting JetStream's acknowledgement, all requests together", 1, 1<<20)
	s.Duration(&c.MaxLateness, "max-lateness", "MAX_LATENESS", "400d", "oldest accepted event time (keep it equal to the ingest service's)", time.Minute, 3650*24*time.Hour)
	s.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error", logging.CheckLevel)
	if err := s.Parse(args); err != nil {
		return c, err
	}
	return c, c.check()
}

// check validates what one setting alone cannot.
func (c Config) check() error {
	var problems []string
	if c.RateBurst < c.MaxBatchEvents {
		problems = append(problems, fmt.Sprintf("--rate-burst / RATE_BURST = %d: must be at least --max-batch-events / MAX_BATCH_EVENTS (%d), or a full batch could never pass",
			c.RateBurst, c.MaxBatchEvents))
	}
	if c.WriteTimeout <= c.AckTimeout {
		problems = append(problems, fmt.Sprintf("--write-timeout / WRITE_TIMEOUT = %s: must be longer than --ack-timeout / ACK_TIMEOUT (%s), or answers after a slow acknowledgement are cut off",
			c.WriteTimeout, c.AckTimeout))
	}
	if err := c.Settings.Check(); err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), "invalid configuration:\n  "))
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

func nonEmpty(v string) error {
	if strings.TrimSpace(v) == "" {
		return errors.New("must be set: the path of the tokens file (docs/gateway.md#tokens)")
	}
	return nil
}
