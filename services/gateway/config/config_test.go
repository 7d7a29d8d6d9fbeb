package config

import (
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

func parse(args []string, env map[string]string) (Config, error) {
	return Parse(args, func(k string) string { return env[k] })
}

func TestDefaults(t *testing.T) {
	c, err := parse(nil, map[string]string{"GATEWAY_TOKENS_FILE": "/etc/assoliment/tokens.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8082" || c.NATSURL != "nats://127.0.0.1:4222" || c.Stream != contract.Stream ||
		c.RateLimit != 1000 || c.RateBurst != 2000 || c.MaxBatchEvents != 1000 || c.MaxBatchBytes != 4<<20 ||
		c.MaxHeaderBytes != 16<<10 || c.ReadHeaderTimeout != 5*time.Second || c.AckTimeout != 10*time.Second ||
		c.MaxLateness != 400*24*time.Hour || c.TokensFile != "/etc/assoliment/tokens.yaml" {
		t.Fatalf("defaults %+v", c)
	}
}

func TestEveryProblemNamed(t *testing.T) {
	_, err := parse([]string{"--rate-limit", "0"}, map[string]string{"HTTP_ADDR": "8082", "NATS_URL": "http://x", "MAX_BATCH_EVENTS": "many"})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"HTTP_ADDR", "host:port", "NATS_URL", "GATEWAY_TOKENS_FILE", "must be set", "--rate-limit", "RATE_LIMIT", "MAX_BATCH_EVENTS", "whole number"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	_, err = parse([]string{"--tokens-file", "t.yaml", "--rate-burst", "10", "--ack-timeout", "2m", "--write-timeout", "1m"}, nil)
	for _, want := range []string{"RATE_BURST", "at least --max-batch-events", "WRITE_TIMEOUT", "longer than --ack-timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestNoClickHouseSettings(t *testing.T) {
	if _, err := parse([]string{"--tokens-file", "t.yaml", "--clickhouse-addr", "db:9000"}, nil); err == nil {
		t.Fatal("the gateway took a ClickHouse setting")
	}
}
