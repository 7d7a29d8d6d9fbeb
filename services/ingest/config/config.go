// Package config reads the ingest service's settings from flags and
// environment variables.
package config

import (
	"fmt"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/connect"
	"github.com/assoliment/assoliment/services/platform/logging"
	"github.com/assoliment/assoliment/services/platform/natsauth"
)

// Config of the ingest service.
type Config struct {
	connect.Settings
	HTTPAddr                            string
	Stream, Consumer, DeadLetterStream  string
	BatchSize                           int
	BatchBytes                          int64
	FlushInterval, AckWait, MaxLateness time.Duration
	StreamMaxBytes                      int64
	DeadLetterMaxAge                    time.Duration
	DeadLetterMaxBytes                  int64
	StreamReplicas                      int
	PublishersFile                      string
	LogLevel                            string
	// Publishers are the providers of PublishersFile and the council.
	Publishers []string
}

// Parse reads args and the environment (getenv); every problem is listed.
func Parse(args []string, getenv func(string) string) (Config, error) {
	var c Config
	s := config.New("ingest", getenv)
	connect.Register(s, &c.Settings)
	s.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", "127.0.0.1:8081", "address of /metrics, /healthz and /readyz", config.HostPort)
	s.String(&c.Stream, "stream", "STREAM", contract.Stream, "JetStream stream capturing smartcity.>", config.Identifier)
	s.String(&c.Consumer, "consumer", "CONSUMER", "ingest", "durable consumer shared by the replicas", config.Identifier)
	s.String(&c.DeadLetterStream, "dlq-stream", "DLQ_STREAM", contract.DeadLetterStream, "dead-letter stream", config.Identifier)
	s.Int(&c.BatchSize, "batch-size", "BATCH_SIZE", 5000, "flush after this many messages", 1, 100000)
	s.Bytes(&c.BatchBytes, "batch-bytes", "BATCH_BYTES", "8MiB", "flush after this many message bytes; also bounds what the client buffers", 1<<20, 256<<20)
	s.Duration(&c.FlushInterval, "flush-interval", "FLUSH_INTERVAL", "200ms", "flush at least this often", time.Millisecond, time.Minute)
	s.Duration(&c.AckWait, "ack-wait", "ACK_WAIT", "60s", "broker ack wait of the consumer", 5*time.Second, time.Hour)
	s.Duration(&c.MaxLateness, "max-lateness", "MAX_LATENESS", "400d", "oldest accepted event time", time.Minute, 3650*24*time.Hour)
	s.Bytes(&c.StreamMaxBytes, "stream-max-bytes", "STREAM_MAX_BYTES", "8GiB", "disk the main stream may use; when full, publishers are refused", 64<<20, 1<<50)
	s.Duration(&c.DeadLetterMaxAge, "dlq-max-age", "DLQ_MAX_AGE", "30d", "how long dead letters are kept", time.Hour, 3650*24*time.Hour)
	s.Bytes(&c.DeadLetterMaxBytes, "dlq-max-bytes", "DLQ_MAX_BYTES", "10GiB", "disk the dead-letter stream may use; when full, the oldest dead letters go", 64<<20, 1<<50)
	s.Int(&c.StreamReplicas, "stream-replicas", "STREAM_REPLICAS", 1, "servers of a NATS cluster that keep each stream (3 in a three-node cluster)", 1, 5)
	s.String(&c.PublishersFile, "publishers-file", "PUBLISHERS_FILE", "", "publishers spec of the secure NATS configuration (deploy/nats/secure/publishers.yaml); its providers and council label rejections", nil)
	s.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error", logging.CheckLevel)
	if err := s.Parse(args); err != nil {
		return c, err
	}
	if err := c.Check(); err != nil {
		return c, err
	}
	if c.PublishersFile != "" {
		spec, err := natsauth.LoadSpec(c.PublishersFile)
		if err != nil {
			return c, fmt.Errorf("invalid configuration:\n  --publishers-file / PUBLISHERS_FILE = %q: %w", c.PublishersFile, err)
		}
		c.Publishers = append(c.Publishers, contract.Council)
		for _, p := range spec.Providers {
			c.Publishers = append(c.Publishers, p.ID)
		}
	}
	return c, nil
}
