package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFlagsAnywhereAndEnv(t *testing.T) {
	c, err := Parse([]string{"publish", "a.jsonl", "--allow-invalid", "b.jsonl", "--nats-url", "nats://x:1"},
		env(map[string]string{"NATS_URL": "nats://env:2", "NATS_CREDS": "/c.creds"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Command != CmdPublish || len(c.Args) != 2 || !c.AllowInvalid || c.NATSURL != "nats://x:1" || c.NATSCreds != "/c.creds" || c.MaxInFlight != 256 {
		t.Fatalf("%+v", c)
	}
	c, err = Parse([]string{"dlq", "list"}, env(map[string]string{"NATS_URL": "nats://env:2"}))
	if err != nil || c.Command != CmdDLQList || c.NATSURL != "nats://env:2" || c.Limit != 100 || c.DLQStream != "SMARTCITY_DLQ" {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = Parse([]string{"dlq", "replay", "--seq", "3,5", "--seq", "8", "--dry-run", "--reason", "too_late"}, env(nil))
	if err != nil || len(c.Seqs) != 3 || c.Seqs[2] != 8 || !c.DryRun || c.Reason != "too_late" || c.Limit != 0 {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = Parse([]string{"assessment", "sabadell", "--at", "2026-11-20T12:00:00+01:00"}, env(map[string]string{"EVALUATOR_URL": "http://ev:9/"}))
	if err != nil || c.EvaluatorURL != "http://ev:9" || !c.At.Equal(time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestEveryProblemListed(t *testing.T) {
	_, err := Parse([]string{"dlq", "replay", "--reason", "bogus", "--seq", "x", "extra"}, env(map[string]string{"NATS_URL": "http://nope"}))
	var u *UsageError
	if !errors.As(err, &u) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"--reason", "too_large", "--seq", "NATS_URL", "nats://host:4222", "no arguments"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if _, err := Parse([]string{"validate"}, env(nil)); err == nil || !strings.Contains(err.Error(), "FILE") {
		t.Errorf("validate without files: %v", err)
	}
	if _, err := Parse([]string{"assessment", "Sabadell!"}, env(nil)); err == nil {
		t.Error("bad municipality accepted")
	}
	if _, err := Parse([]string{"frobnicate"}, env(nil)); err == nil {
		t.Error("unknown command accepted")
	}
}

func TestHelpEverywhere(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"help"}, {"help", "publish"}, {"validate", "--help"}, {"publish", "-h"},
		{"dlq", "--help"}, {"dlq", "list", "--help"}, {"dlq", "replay", "--help"}, {"assessment", "--help"}} {
		_, err := Parse(args, env(nil))
		var h *HelpError
		if !errors.As(err, &h) || !strings.Contains(h.Text, "Usage") {
			t.Errorf("%q: %v", args, err)
		}
		if len(args) > 0 && args[0] != "help" && args[0] != "--help" && args[0] != "dlq" && !strings.Contains(h.Text, "Examples") {
			t.Errorf("%q: help without examples", args)
		}
	}
}
