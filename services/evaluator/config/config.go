// Package config reads the evaluator's settings from flags and environment
// variables.
package config

import (
	"time"

	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/logging"
	"github.com/assoliment/assoliment/services/platform/tlsconfig"
)

// Config of the evaluator.
type Config struct {
	NATSURL, NATSCreds                       string
	ClickHouseAddr, Database, User, Password string
	HTTPAddr                                 string
	Interval                                 time.Duration
	CriteriaFile                             string
	LogLevel                                 string
	TLS                                      tlsconfig.Settings // NATS and ClickHouse TLS
}

// Parse reads args and the environment (getenv); every problem is listed.
func Parse(args []string, getenv func(string) string) (Config, error) {
	var c Config
	s := config.New("evaluator", getenv)
	s.String(&c.NATSURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URLs", config.NATSURL)
	s.String(&c.NATSCreds, "nats-creds", "NATS_CREDS", "", "NATS credentials file (optional)", nil)
	tlsconfig.Register(s, &c.TLS)
	s.String(&c.ClickHouseAddr, "clickhouse-addr", "CLICKHOUSE_ADDR", "127.0.0.1:9000", "ClickHouse native protocol address", config.HostPort)
	s.String(&c.Database, "clickhouse-database", "CLICKHOUSE_DATABASE", "smartcity", "ClickHouse database", config.Identifier)
	s.String(&c.User, "clickhouse-user", "CLICKHOUSE_USER", "default", "ClickHouse user", nil)
	s.String(&c.Password, "clickhouse-password", "CLICKHOUSE_PASSWORD", "", "ClickHouse password", nil)
	s.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", "127.0.0.1:8080", "address of the API, /metrics, /healthz and /readyz", config.HostPort)
	s.Duration(&c.Interval, "evaluation-interval", "EVALUATION_INTERVAL", "30s", "time between evaluations", time.Second, 24*time.Hour)
	s.String(&c.CriteriaFile, "criteria-file", "CRITERIA_FILE", "", "YAML file of thresholds and windows (built-in defaults when empty)", nil)
	s.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error", logging.CheckLevel)
	if err := s.Parse(args); err != nil {
		return c, err
	}
	if err := c.TLS.Check(); err != nil {
		return c, err
	}
	return c, nil
}
