package config

import (
	"errors"
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
	if c.NATSURL != "nats://127.0.0.1:4222" || c.Mode != ModeRun || c.Seed != 1 || c.Backfill != 60*24*time.Hour ||
		c.Speed != 1 || c.MaxInFlight != 1024 || !c.Start.IsZero() || c.Stream != "SMARTCITY" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestFlagOverEnvOverDefault(t *testing.T) {
	c, err := Parse([]string{"--seed", "9", "--backfill=1440h"},
		env(map[string]string{"SIMULATOR_SEED": "5", "SIMULATOR_BACKFILL": "10d", "NATS_URL": "nats://broker:4222",
			"SIMULATOR_START": "2026-11-20T12:00:00+01:00"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Seed != 9 || c.Backfill != 60*24*time.Hour || c.NATSURL != "nats://broker:4222" ||
		!c.Start.Equal(time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v", c)
	}
}

func TestEveryProblemListed(t *testing.T) {
	_, err := Parse([]string{"--mode", "load", "--speed", "0", "--invalid-share", "1.5"},
		env(map[string]string{"SIMULATOR_SEED": "one", "SIMULATOR_BACKFILL": "500d", "NATS_URL": "http://x", "SIMULATOR_START": "yesterday"}))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"--speed", "SIMULATOR_SPEED", "--invalid-share", "SIMULATOR_SEED", "whole number",
		"SIMULATOR_BACKFILL", "390d", "NATS_URL", "SIMULATOR_START", "RFC 3339", "--count", "--duration"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
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
	if _, err := Parse([]string{"--help"}, env(nil)); !errors.Is(err, ErrHelp) {
		t.Fatalf("got %v", err)
	}
	if u := Usage(); !strings.Contains(u, "SIMULATOR_BACKFILL") || !strings.Contains(u, "Examples") {
		t.Fatal(u)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"60d": 60 * 24 * time.Hour, "1440h": 1440 * time.Hour, "1d12h": 36 * time.Hour, "0": 0, "90s": 90 * time.Second} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "d", "-1d", "x", "5 days"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
