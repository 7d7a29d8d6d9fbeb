package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.Interval != 30*time.Second || c.Database != "smartcity" || c.MaxOnDemand != 2 ||
		c.StreamReplicas != 1 || c.ReportTimeZone != "Europe/Madrid" {
		t.Fatalf("%+v", c)
	}
}

func TestProblemsNamed(t *testing.T) {
	env := map[string]string{"EVALUATION_INTERVAL": "0s", "HTTP_ADDR": "8080", "NATS_URL": "x", "MAX_ON_DEMAND_EVALUATIONS": "0",
		"REPORT_TIME_ZONE": "Europe/Nowhere", "STREAM_REPLICAS": "7"}
	_, err := Parse(nil, func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("accepted")
	}
	for k := range env {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("%s not named: %v", k, err)
		}
	}
}

func TestReportTimeZone(t *testing.T) {
	for _, tz := range []string{"Europe/Madrid", "Atlantic/Canary", "UTC"} {
		if c, err := Parse([]string{"--report-time-zone", tz}, nil); err != nil || c.ReportTimeZone != tz {
			t.Errorf("%s: %v %q", tz, err, c.ReportTimeZone)
		}
	}
	for _, tz := range []string{"Local", "Europe/Nowhere", "../../etc/passwd", "+02:00"} {
		if _, err := Parse([]string{"--report-time-zone", tz}, nil); err == nil || !strings.Contains(err.Error(), "report-time-zone") ||
			!strings.Contains(err.Error(), "IANA time zone") {
			t.Errorf("%s accepted or not named: %v", tz, err)
		}
	}
}
