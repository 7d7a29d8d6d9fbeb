package config

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.URL != "nats://127.0.0.1:4222" || c.Mode != ModeRun || c.Seed != 1 || c.Backfill != 60*24*time.Hour ||
		c.Speed != 1 || c.MaxInFlight != 1024 || !c.Start.IsZero() || c.Stream != "SMARTCITY" || c.Municipalities != 10 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestFlagOverEnvOverDefault(t *testing.T) {
	c, err := Parse([]string{"--seed", "9", "--backfill=1440h", "--creds", "/s/operator.nk"},
		env(map[string]string{"SIMULATOR_SEED": "5", "SIMULATOR_BACKFILL": "10d", "NATS_URL": "tls://broker:4222",
			"SIMULATOR_START": "2026-11-20T12:00:00+01:00", "NATS_CREDS": "/env.nk", "NATS_TLS_CA": "/ca.pem", "NATS_INBOX_PREFIX": "_INBOX.sim"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Seed != 9 || c.Backfill != 60*24*time.Hour || c.NATS.URL != "tls://broker:4222" || c.NATS.Creds != "/s/operator.nk" ||
		c.NATS.TLS.CAFile != "/ca.pem" || c.NATS.InboxPrefix != "_INBOX.sim" ||
		!c.Start.Equal(time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v", c)
	}
}

// Each bad setting is refused naming its flag or variable and the form.
func TestErrorsNameTheSettingAndTheForm(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"--speed", "0"}, nil, []string{"speed", "from 1 to 100000"}},
		{[]string{"--invalid-share", "1.5"}, nil, []string{"invalid-share", "from 0 to 1"}},
		{nil, map[string]string{"SIMULATOR_SEED": "one"}, []string{"SIMULATOR_SEED", "whole number"}},
		{nil, map[string]string{"SIMULATOR_BACKFILL": "500d"}, []string{"SIMULATOR_BACKFILL", "390d"}},
		{nil, map[string]string{"SIMULATOR_BACKFILL": "213504d"}, []string{"SIMULATOR_BACKFILL", "390d"}},
		{nil, map[string]string{"NATS_URL": "http://x"}, []string{"NATS_URL", "nats://host:port"}},
		{nil, map[string]string{"SIMULATOR_START": "yesterday"}, []string{"SIMULATOR_START", "RFC 3339"}},
		{[]string{"--mode", "fast"}, nil, []string{"mode", "run, backfill, load"}},
		{[]string{"--log-level", "loud"}, nil, []string{"log-level", "debug, info, warn or error"}},
		{[]string{"--mode", "load"}, nil, []string{"--count", "SIMULATOR_DURATION"}},
		{[]string{"--count", "-1"}, nil, []string{"count", "0 for no limit"}},
		{[]string{"--stream", "A.B"}, nil, []string{"stream", "letters, digits"}},
		{[]string{"extra"}, nil, []string{"no arguments", "extra"}},
		{[]string{"--frobnicate"}, nil, []string{"frobnicate"}},
	} {
		_, err := Parse(c.args, env(c.env))
		if err == nil {
			t.Errorf("%q %v accepted", c.args, c.env)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q %v: %q does not mention %q", c.args, c.env, err, w)
			}
		}
	}
}

func TestLoadMode(t *testing.T) {
	c, err := Parse([]string{"--mode", "load", "--rate", "500", "--count", "1000", "--invalid-share", "0.01", "--municipalities", "3"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Rate != 500 || c.Count != 1000 || c.InvalidShare != 0.01 || c.Municipalities != 3 {
		t.Fatalf("%+v", c)
	}
}

func TestHelp(t *testing.T) {
	ran := false
	cmd := Command(env(nil), func(context.Context, Config) error { ran = true; return nil })
	var out bytes.Buffer
	cmd.Writer = &out
	if err := cmd.Run(context.Background(), []string{"simulator", "--help"}); err != nil || ran {
		t.Fatalf("help: %v, ran %v", err, ran)
	}
	for _, w := range []string{"SIMULATOR_BACKFILL", "Examples", "$NATS_CREDS", "$NATS_TLS_CA", "$NATS_INBOX_PREFIX", "operator"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("help lacks %q:\n%s", w, out.String())
		}
	}
}
