package config

import (
	"strings"
	"testing"
	"time"
)

type cfg struct {
	addr  string
	batch int
	every time.Duration
	share float64
	on    bool
}

func parse(args []string, env map[string]string) (cfg, error) {
	var c cfg
	s := New("svc", func(k string) string { return env[k] })
	s.String(&c.addr, "addr", "ADDR", "127.0.0.1:1", "address", HostPort)
	s.Int(&c.batch, "batch", "BATCH", 10, "batch", 1, 100)
	s.Duration(&c.every, "every", "EVERY", "30s", "interval", time.Second, 30*24*time.Hour)
	s.Float(&c.share, "share", "SHARE", 0.5, "share", 0, 1)
	s.Bool(&c.on, "on", "ON", false, "switch")
	return c, s.Parse(args)
}

func TestPrecedence(t *testing.T) {
	c, err := parse(nil, nil)
	if err != nil || c.addr != "127.0.0.1:1" || c.batch != 10 || c.every != 30*time.Second || c.share != 0.5 || c.on {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = parse([]string{"--batch", "7"}, map[string]string{"BATCH": "9", "EVERY": "2d", "ON": "true"})
	if err != nil || c.batch != 7 || c.every != 48*time.Hour || !c.on {
		t.Fatalf("flag over env: %+v %v", c, err)
	}
}

func TestAllProblemsListed(t *testing.T) {
	_, err := parse([]string{"--every", "0s"}, map[string]string{"ADDR": "nope", "BATCH": "x", "SHARE": "2", "ON": "maybe"})
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"ADDR", "host:port", "BATCH", "whole number from 1 to 100", "--every", "EVERY", "SHARE", "from 0 to 1", "ON", "true or false"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestValidators(t *testing.T) {
	if NATSURL("nats://a:1,tls://b:2") != nil || NATSURL("http://a") == nil || NATSURL("") == nil {
		t.Fatal("NATSURL")
	}
	if Identifier("SMARTCITY_DLQ") != nil || Identifier("a.b") == nil || Identifier("") == nil {
		t.Fatal("Identifier")
	}
	if d, err := ParseDuration("400d"); err != nil || d != 400*24*time.Hour {
		t.Fatal("days")
	}
}
