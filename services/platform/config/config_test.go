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
	for _, ok := range []string{"nats://a:1,tls://b:2", "nats://a", "wss://a:443", "ws://a:8080,ws://b:8080", " nats://a:1 , nats://b:2"} {
		if err := NATSURL(ok); err != nil {
			t.Errorf("NATSURL(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "http://a", "a:4222", "nats://", "nats://a:1,", "nats://a:1,ws://b:2"} {
		if err := NATSURL(bad); err == nil {
			t.Errorf("NATSURL(%q) accepted", bad)
		}
	}
	if Identifier("SMARTCITY_DLQ") != nil || Identifier("a.b") == nil || Identifier("") == nil {
		t.Fatal("Identifier")
	}
	if d, err := ParseDuration("400d"); err != nil || d != 400*24*time.Hour {
		t.Fatal("days")
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"400d", 400 * Day, true},
		{"0d", 0, true},
		{"1d12h", Day + 12*time.Hour, true},
		{" 30d ", 30 * Day, true},
		{"90m", 90 * time.Minute, true},
		{"106751d", 106751 * Day, true},
		{"106751d23h47m16s", 106751*Day + 23*time.Hour + 47*time.Minute + 16*time.Second, true},
		// 213504 days overflowed into 25m26s before.
		{"213504d", 0, false},
		{"106752d", 0, false},
		{"106751d24h", 0, false},
		{"9223372036854775807d", 0, false},
		{"-1d", 0, false},
		{"1.5d", 0, false},
		{"d", 0, false},
		{"1dx", 0, false},
		{"1d-1h", 0, false},
		{"", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %t", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestDurationSettingRefusesOverflow(t *testing.T) {
	var d time.Duration
	s := New("test", nil)
	s.Duration(&d, "max-lateness", "MAX_LATENESS", "400d", "oldest", time.Minute, 3650*Day)
	err := s.Parse([]string{"--max-lateness", "213504d"})
	if err == nil || !strings.Contains(err.Error(), "--max-lateness") {
		t.Fatalf("213504d accepted (as %v) or error does not name the flag: %v", d, err)
	}
}

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"10GiB", 10 << 30, true},
		{"512MiB", 512 << 20, true},
		{"1048576", 1 << 20, true},
		{"2GB", 2e9, true},
		{"1KiB", 0, false},  // below the range
		{"1TiB", 0, false},  // above the range
		{"-1GiB", 0, false}, // not a size
		{"lots", 0, false},
	} {
		var n int64
		s := New("test", nil)
		s.Bytes(&n, "max-bytes", "MAX_BYTES", "1GiB", "size", 1<<20, 100<<30)
		err := s.Parse([]string{"--max-bytes", tc.in})
		if tc.ok != (err == nil) || (tc.ok && n != tc.want) {
			t.Errorf("--max-bytes %s = %d, %v; want %d, ok %t", tc.in, n, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "MAX_BYTES") {
			t.Errorf("error does not name the variable: %v", err)
		}
	}
}
