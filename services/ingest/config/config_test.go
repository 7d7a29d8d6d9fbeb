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
	if c.NATSURL != "nats://127.0.0.1:4222" || c.ClickHouseAddr != "127.0.0.1:9000" || c.Database != "smartcity" ||
		c.HTTPAddr != "127.0.0.1:8081" || c.Stream != "SMARTCITY" || c.MaxLateness != 400*24*time.Hour {
		t.Fatalf("%+v", c)
	}
}

func TestEveryProblemNamed(t *testing.T) {
	env := map[string]string{"NATS_URL": "localhost", "CLICKHOUSE_ADDR": "nohost", "BATCH_SIZE": "0", "FLUSH_INTERVAL": "soon", "CLICKHOUSE_DATABASE": "a.b"}
	_, err := Parse(nil, func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("accepted")
	}
	for k := range env {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("%s not named in:\n%v", k, err)
		}
	}
}
