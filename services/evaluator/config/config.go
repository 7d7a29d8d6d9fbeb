// Package config reads the evaluator's settings from flags and environment
// variables.
package config

import (
	"time"

	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/connect"
	"github.com/assoliment/assoliment/services/platform/logging"
)

// Config of the evaluator.
type Config struct {
	connect.Settings
	HTTPAddr     string
	Interval     time.Duration
	CriteriaFile string
	// MaxOnDemand is how many ?at= evaluations may run at once.
	MaxOnDemand int
	LogLevel    string
}

// Parse reads args and the environment (getenv); every problem is listed.
func Parse(args []string, getenv func(string) string) (Config, error) {
	var c Config
	s := config.New("evaluator", getenv)
	connect.Register(s, &c.Settings)
	s.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", "127.0.0.1:8080", "address of the API, /metrics, /healthz and /readyz", config.HostPort)
	s.Duration(&c.Interval, "evaluation-interval", "EVALUATION_INTERVAL", "30s", "time between evaluations", time.Second, 24*time.Hour)
	s.String(&c.CriteriaFile, "criteria-file", "CRITERIA_FILE", "", "YAML file of thresholds and windows (built-in defaults when empty)", nil)
	s.Int(&c.MaxOnDemand, "max-on-demand-evaluations", "MAX_ON_DEMAND_EVALUATIONS", 2,
		"?at= evaluations running at once; more are answered 429 with Retry-After", 1, 64)
	s.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error", logging.CheckLevel)
	if err := s.Parse(args); err != nil {
		return c, err
	}
	return c, c.Check()
}
