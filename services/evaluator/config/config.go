// Package config reads the evaluator's settings from flags and environment
// variables.
package config

import (
	"errors"
	"time"
	_ "time/tzdata" // REPORT_TIME_ZONE without the system's zone files

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
	// StreamReplicas is how many NATS servers keep the level-change stream.
	StreamReplicas int
	// ReportTimeZone is the IANA time zone of the monthly reports'
	// calendar months.
	ReportTimeZone string
	LogLevel       string
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
	s.Int(&c.StreamReplicas, "stream-replicas", "STREAM_REPLICAS", 1,
		"servers of a NATS cluster that keep the level-change stream (3 in a three-node cluster)", 1, 5)
	s.String(&c.ReportTimeZone, "report-time-zone", "REPORT_TIME_ZONE", "Europe/Madrid",
		"IANA time zone of the monthly SLA reports' calendar months", checkTimeZone)
	s.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error", logging.CheckLevel)
	if err := s.Parse(args); err != nil {
		return c, err
	}
	return c, c.Check()
}

// checkTimeZone accepts an IANA time zone name; "Local" and "" are refused,
// since they depend on the machine.
func checkTimeZone(v string) error {
	if v == "" || v == "Local" {
		return errors.New("must be an IANA time zone name such as Europe/Madrid")
	}
	if _, err := time.LoadLocation(v); err != nil {
		return errors.New("must be an IANA time zone name such as Europe/Madrid")
	}
	return nil
}
