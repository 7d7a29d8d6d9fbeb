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
	if c.HTTPAddr != "127.0.0.1:8080" || c.Interval != 30*time.Second || c.Database != "smartcity" || c.MaxOnDemand != 2 {
		t.Fatalf("%+v", c)
	}
}

func TestProblemsNamed(t *testing.T) {
	env := map[string]string{"EVALUATION_INTERVAL": "0s", "HTTP_ADDR": "8080", "NATS_URL": "x", "MAX_ON_DEMAND_EVALUATIONS": "0"}
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
