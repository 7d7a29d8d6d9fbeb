package maturity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const shippedCriteria = "../../../../deploy/evaluator/criteria.yaml"

func TestShippedCriteriaAreTheDefaults(t *testing.T) {
	cfg, err := LoadConfig(shippedCriteria)
	if err != nil {
		t.Fatal(err)
	}
	if cfg != DefaultConfig() {
		t.Errorf("shipped criteria differ from DefaultConfig:\n%+v\n%+v", cfg, DefaultConfig())
	}
}

func TestShippedCriteriaNameEveryKey(t *testing.T) {
	data, err := os.ReadFile(shippedCriteria)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	for _, s := range cfg.settings() {
		name := s.key[strings.LastIndexByte(s.key, '.')+1:]
		if !strings.Contains(string(data), name+":") {
			t.Errorf("shipped criteria lack %s", s.key)
		}
	}
}

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	err := Config{}.Validate()
	if err == nil {
		t.Fatal("zero config accepted")
	}
	cfg := DefaultConfig()
	want := 0 // every duration and count; a share of 0 is valid
	for _, s := range cfg.settings() {
		if s.kind != kindShare {
			want++
		}
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != want {
		t.Errorf("%d problems, want %d:\n%v", len(lines), want, err)
	}
	cfg.SLAMeasuredMinShare = 1.5
	if err := cfg.Validate(); err == nil || err.Error() != "criteria.sla_measured.min_share: must be a number between 0 and 1, got 1.5" {
		t.Errorf("err = %v", err)
	}
}

func TestParsePartialKeepsDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
window: 720h
criteria:
  sla_measured:
    min_share: 0.8
  integral_coverage:
    min_areas: 5
`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.SLAMeasuredMinShare = 0.8
	want.IntegralCoverageMinAreas = 5
	if cfg != want {
		t.Errorf("got\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "---\n"} {
		cfg, err := ParseConfig([]byte(doc))
		if err != nil || cfg != DefaultConfig() {
			t.Errorf("%q: %+v, %v", doc, cfg, err)
		}
	}
}

func TestParseValues(t *testing.T) {
	for _, tt := range []struct {
		doc  string
		want func(*Config)
	}{
		{"window: 30d", func(c *Config) { c.Window = 30 * Day }},
		{"window: 720h", func(c *Config) { c.Window = 720 * time.Hour }},
		{"window: 1h30m", func(c *Config) { c.Window = 90 * time.Minute }},
		{"adaptation_window: 1d", func(c *Config) { c.Adaptation = Day }},
		{"adaptation_window: 1d12h", func(c *Config) { c.Adaptation = Day + 12*time.Hour }},
		{"min_samples: 1", func(c *Config) { c.MinSamples = 1 }},
		{"live_intervals: 3", func(c *Config) { c.LiveIntervals = 3 }},
		{"criteria: {open_data: {min_share: 0}}", func(c *Config) { c.OpenDataMinShare = 0 }},
		{"criteria: {open_data: {min_share: 1}}", func(c *Config) { c.OpenDataMinShare = 1 }},
		{"criteria: {open_data: {min_share: .75}}", func(c *Config) { c.OpenDataMinShare = 0.75 }},
		{"window: &w 2d\nadaptation_window: *w\n", func(c *Config) { c.Window, c.Adaptation = 2*Day, 2*Day }},
	} {
		cfg, err := ParseConfig([]byte(tt.doc))
		want := DefaultConfig()
		tt.want(&want)
		if err != nil || cfg != want {
			t.Errorf("%q: %+v, %v", tt.doc, cfg, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		doc, want string
	}{
		{"criteria: {sla_measured: {min_share: 1.5}}", "criteria.sla_measured.min_share: must be a number between 0 and 1, got 1.5 (line 1)"},
		{"criteria: {sla_measured: {min_share: -0.1}}", "criteria.sla_measured.min_share: must be a number between 0 and 1, got -0.1"},
		{"criteria: {sla_measured: {min_share: .nan}}", "criteria.sla_measured.min_share: must be a number between 0 and 1, got .nan"},
		{`criteria: {sla_measured: {min_share: "0.9"}}`, `criteria.sla_measured.min_share: must be a number between 0 and 1, got "0.9"`},
		{"criteria: {sla_measured: {min_share: }}", "criteria.sla_measured.min_share: must be a number between 0 and 1, got nothing"},
		{"criteria: {sla_measured: {min_share: [1]}}", "criteria.sla_measured.min_share: must be a number between 0 and 1, got a list"},
		{"criteria: {sla_measured: {min_share: {a: 1}}}", "criteria.sla_measured.min_share: must be a number between 0 and 1, got a mapping"},
		{"min_samples: 2.5", "min_samples: must be a whole number of at least 1, got 2.5"},
		{"min_samples: 0", "min_samples: must be a whole number of at least 1, got 0"},
		{"min_samples: ten", `min_samples: must be a whole number of at least 1, got "ten"`},
		{"min_samples: 99999999999999999999", "min_samples: must be a whole number of at least 1, got 99999999999999999999"},
		{"window: 30", `window: must be a positive duration such as "30d" or "720h", got 30`},
		{"window: 30days", `window: must be a positive duration such as "30d" or "720h", got "30days"`},
		{"window: 0d", `window: must be a positive duration such as "30d" or "720h", got "0d"`},
		{"window: -1h", `window: must be a positive duration such as "30d" or "720h", got "-1h"`},
		{"window: 999999999999d", `window: must be a positive duration such as "30d" or "720h", got "999999999999d"`},
		{"window: 213504d", `window: must be a positive duration such as "30d" or "720h", got "213504d"`},
		{"windw: 30d", "windw: unknown key; expected one of window, adaptation_window, min_samples, live_intervals, criteria"},
		{"criteria: {pilot: {min_areas: 1}}", "criteria.pilot.min_areas: unknown key; expected one of min_services"},
		{"criteria: {pilots: {}}", "criteria.pilots: unknown key; expected one of pilot, areas_collaborating"},
		{"criteria: {pilot: 1}", "criteria.pilot: must be a mapping of keys (min_services), got 1"},
		{"criteria: 3", "criteria: must be a mapping of keys (pilot, areas_collaborating"},
		{"- window", "top level: must be a mapping of keys (window, adaptation_window"},
		{"min_samples: 5\nmin_samples: 6", "min_samples: defined more than once (line 2)"},
		{"window: [", "yaml:"},
	} {
		_, err := ParseConfig([]byte(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.doc, err, tt.want)
		}
	}
}

func TestParseReportsAllProblems(t *testing.T) {
	_, err := ParseConfig([]byte(`
window: soon
min_samples: 0
extra: 1
criteria:
  sla_measured:
    min_share: 1.5
  adaptive:
    min_new: x
`))
	if err == nil {
		t.Fatal("accepted")
	}
	want := []string{"window:", "min_samples:", "extra:", "criteria.sla_measured.min_share:", "criteria.adaptive.min_new:"}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "criteria.yaml")
	if err := os.WriteFile(path, []byte("criteria: {realtime: {min_share: 2}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "criteria.realtime.min_share") {
		t.Errorf("err = %v", err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}
