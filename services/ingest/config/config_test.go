package config

import (
	"os"
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

func TestPublishersFile(t *testing.T) {
	dir := t.TempDir()
	spec := dir + "/publishers.yaml"
	if err := os.WriteFile(spec, []byte("municipalities: [olot]\nproviders:\n  - id: fcc\n    municipalities: [olot]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]string{"--publishers-file", spec}, func(string) string { return "" })
	if err != nil || strings.Join(c.Publishers, ",") != "council,fcc" {
		t.Fatalf("%v %v", c.Publishers, err)
	}
	_, err = Parse(nil, func(k string) string { return map[string]string{"PUBLISHERS_FILE": dir + "/missing.yaml"}[k] })
	if err == nil || !strings.Contains(err.Error(), "PUBLISHERS_FILE") {
		t.Fatalf("a missing publishers file: %v", err)
	}
}
