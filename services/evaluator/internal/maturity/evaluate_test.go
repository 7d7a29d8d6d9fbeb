package maturity

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func ids(cs []Criterion) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestSampleLevels(t *testing.T) {
	missing := [][]string{
		0: {"pilot"},
		1: {"areas_collaborating"},
		2: {"areas_integrated", "external_partner", "services_integrated"},
		3: {"sla_coverage_own", "incident_response"},
		4: {"adaptive"},
		5: {},
	}
	for level, want := range missing {
		in := SampleInput("sabadell", level, t0)
		a := Evaluate(DefaultConfig(), in)
		if a.Level != level || a.LevelName != LevelName(level) {
			t.Errorf("level %d: got %d %q", level, a.Level, a.LevelName)
		}
		if got := ids(a.Missing); !slices.Equal(got, want) {
			t.Errorf("level %d: missing %v, want %v", level, got, want)
		}
		checkJSON(t, a)
	}
}

func TestLevelNames(t *testing.T) {
	want := []string{"sense_dades", "puntual", "collaboracio", "estrategia", "gestionat", "optimitzat"}
	for l, name := range want {
		if got := LevelName(l); got != name {
			t.Errorf("LevelName(%d) = %q, want %q", l, got, name)
		}
	}
	if LevelName(-1) != "" || LevelName(6) != "" {
		t.Error("LevelName out of range should be empty")
	}
}

func TestCriteriaOrder(t *testing.T) {
	want := []struct {
		level int
		id    string
	}{
		{1, "pilot"}, {2, "areas_collaborating"}, {3, "areas_integrated"}, {3, "external_partner"},
		{3, "services_integrated"}, {4, "sla_coverage_concession"}, {4, "sla_coverage_own"},
		{4, "sla_measured"}, {4, "realtime"}, {4, "incident_response"}, {4, "cross_cutting"},
		{5, "integral_coverage"}, {5, "service_quality"}, {5, "continuous_improvement"},
		{5, "open_data"}, {5, "external_collaboration"}, {5, "adaptive"},
	}
	a := Evaluate(DefaultConfig(), SampleInput("x", 5, t0))
	if len(a.Criteria) != len(want) {
		t.Fatalf("%d criteria, want %d", len(a.Criteria), len(want))
	}
	for i, w := range want {
		c := a.Criteria[i]
		if c.Level != w.level || c.ID != w.id || c.LevelName != LevelName(w.level) {
			t.Errorf("criterion %d = %d %s %s, want %d %s", i, c.Level, c.LevelName, c.ID, w.level, w.id)
		}
		if !c.Passed || c.ThresholdText == "" || c.Explanation == "" {
			t.Errorf("%s: %+v", c.ID, c)
		}
	}
}

func TestLevelRule(t *testing.T) {
	for _, tt := range []struct {
		name    string
		edit    func(*Config, *Input)
		level   int
		missing []string
	}{
		{"defaults", func(*Config, *Input) {}, 5, []string{}},
		{"failing level 3 caps passing levels 4 and 5", func(c *Config, _ *Input) { c.AreasIntegratedMinAreas = 7 }, 2, []string{"areas_integrated"}},
		{"failing level 4 caps level 5", func(c *Config, in *Input) {
			c.RealtimeMinShare = 1
			in.Services[0].LastMeasurement = time.Time{}
		}, 3, []string{"realtime"}},
		{"pilot failing gives level 0", func(c *Config, _ *Input) { c.PilotMinServices = 7 }, 0, []string{"pilot"}},
		{"only level 5 failing", func(c *Config, _ *Input) { c.ExternalCollaborationMinProviders = 5 }, 4, []string{"external_collaboration"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, in := DefaultConfig(), SampleInput("x", 5, t0)
			tt.edit(&cfg, &in)
			a := Evaluate(cfg, in)
			if a.Level != tt.level || a.LevelName != LevelName(tt.level) {
				t.Errorf("level = %d %s, want %d", a.Level, a.LevelName, tt.level)
			}
			if got := ids(a.Missing); !slices.Equal(got, tt.missing) {
				t.Errorf("missing = %v, want %v", got, tt.missing)
			}
			var failing []string
			for _, c := range a.Criteria {
				if !c.Passed {
					failing = append(failing, c.ID)
				}
			}
			if len(failing) > 1 {
				t.Errorf("failing = %v, want only the capping criterion", failing)
			}
		})
	}
}

func TestEmptyInputHasNoNaN(t *testing.T) {
	a := Evaluate(DefaultConfig(), Input{Municipality: "buit", At: t0})
	if a.Level != 0 || a.LevelName != "sense_dades" {
		t.Errorf("level = %d %q", a.Level, a.LevelName)
	}
	counts := map[string]bool{"pilot": true, "areas_collaborating": true, "areas_integrated": true, "cross_cutting": true,
		"external_partner": true, "external_collaboration": true, "adaptive": true}
	for _, c := range a.Criteria {
		if c.Passed {
			t.Errorf("%s passed on empty input", c.ID)
		}
		if counts[c.ID] != (c.Value != nil) {
			t.Errorf("%s: value %v", c.ID, c.Value)
		}
		if c.Value != nil && (math.IsNaN(*c.Value) || *c.Value != 0) {
			t.Errorf("%s: value %v", c.ID, *c.Value)
		}
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"value":null`, `"window_seconds":2592000`, `"level_name":"sense_dades"`, `"slas":[]`, `"services":[]`, `"missing":[{`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s: %s", want, s)
		}
	}
	if strings.Contains(s, "NaN") {
		t.Errorf("JSON has NaN: %s", s)
	}
}

func TestJSONShape(t *testing.T) {
	a := Evaluate(DefaultConfig(), SampleInput("sabadell", 5, t0))
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"municipality", "at", "window_seconds", "level", "level_name", "criteria", "missing", "slas", "services"} {
		if _, ok := m[key]; !ok {
			t.Errorf("no %q in %s", key, b)
		}
	}
	if m["missing"] == nil || len(m["missing"].([]any)) != 0 {
		t.Errorf("missing at level 5 = %v, want []", m["missing"])
	}
	crit := m["criteria"].([]any)[0].(map[string]any)
	for _, key := range []string{"level", "level_name", "id", "passed", "value", "threshold", "threshold_text", "explanation"} {
		if _, ok := crit[key]; !ok {
			t.Errorf("criterion has no %q: %v", key, crit)
		}
	}
	if strings.Contains(string(b), "NaN") {
		t.Errorf("JSON has NaN: %s", b)
	}
}

func TestOrderIndependent(t *testing.T) {
	in := SampleInput("x", 5, t0)
	rev := in
	rev.Services = slices.Clone(in.Services)
	rev.SLAs = slices.Clone(in.SLAs)
	slices.Reverse(rev.Services)
	slices.Reverse(rev.SLAs)
	if a, b := Evaluate(DefaultConfig(), in), Evaluate(DefaultConfig(), rev); !reflect.DeepEqual(a, b) {
		t.Errorf("result depends on input order:\n%+v\n%+v", a, b)
	}
}

func TestSLAResults(t *testing.T) {
	perfect := func(kpi string, c WindowStats) SLA { k := sla("a", kpi, c, ws(9, 9)); k.Objective = 1; return k }
	in := mk(own("a", "x", 1),
		sla("a", "b-budget-left", ws(100, 99), ws(10, 10)), // objective 0.95
		sla("a", "c-overspent", ws(10, 9), ws(0, 0)),
		perfect("d-perfect", ws(10, 10)),
		perfect("e-imperfect", ws(100, 99)),
		sla("a", "a-unmeasured", ws(9, 9), ws(10, 9)),
	)
	a := Evaluate(DefaultConfig(), in)
	want := []struct {
		kpi                string
		compliance, budget *float64
		complianceP        *float64
		met                bool
	}{
		{"a-unmeasured", nil, nil, new(0.9), false},
		{"b-budget-left", new(0.99), new(0.8), new(1.0), true},
		{"c-overspent", new(0.9), new(-1.0), nil, false},
		{"d-perfect", new(1.0), new(1.0), nil, true},
		{"e-imperfect", new(0.99), new(0.0), nil, false},
	}
	if len(a.SLAs) != len(want) {
		t.Fatalf("%d SLA results, want %d", len(a.SLAs), len(want))
	}
	eq := func(got, want *float64) bool {
		return (got == nil) == (want == nil) && (got == nil || math.Abs(*got-*want) < 1e-12)
	}
	str := func(p *float64) any {
		if p == nil {
			return "nil"
		}
		return *p
	}
	for i, w := range want {
		r := a.SLAs[i]
		if r.KPI != w.kpi || !eq(r.Compliance, w.compliance) || !eq(r.ErrorBudgetRemaining, w.budget) ||
			!eq(r.ComplianceP, w.complianceP) || r.Met != w.met {
			t.Errorf("%s: compliance %v budget %v complianceP %v met %v; want %s %v %v %v %v", r.KPI,
				str(r.Compliance), str(r.ErrorBudgetRemaining), str(r.ComplianceP), r.Met,
				w.kpi, str(w.compliance), str(w.budget), str(w.complianceP), w.met)
		}
	}
	if r := a.SLAs[1]; r.SamplesC != 100 || r.SamplesP != 10 || r.Service != "a" || r.Objective != 0.95 {
		t.Errorf("result = %+v", r)
	}
	checkJSON(t, a)
}

func TestServiceResults(t *testing.T) {
	mid := t0.Add(-Day)
	in := mk(
		own("b", "x", 0),
		conc("a", "y", "fcc", 3),
		sla("a", "k", ws(0, 0), ws(0, 0)),
		incident("a", "open", t0.Add(time.Hour), time.Time{}),
		incident("a", "overdue", mid, time.Time{}),
		incident("a", "resolved", mid, mid),
		incident("a", "resolved-at-T", t0.Add(time.Hour), t0),
		Incident{Service: "a", ID: "opened-at-T", OpenedAt: t0, Deadline: t0.Add(Day)},
		incident("b", "b-open", mid, time.Time{}),
	)
	a := Evaluate(DefaultConfig(), in)
	want := []ServiceResult{
		{ID: "a", Name: "a", Area: "y", Delivery: DeliveryConcession, Provider: "fcc", HasSLA: true, Reporting: true, Live: true,
			MeasurementsC: 3, LastMeasurement: t0.Add(-time.Minute), OpenIncidents: 3, ReportingIntervalSeconds: 3600},
		{ID: "b", Name: "b", Area: "x", Delivery: DeliveryOwn, Provider: Council, OpenIncidents: 1, ReportingIntervalSeconds: 3600},
	}
	if !reflect.DeepEqual(a.Services, want) {
		t.Errorf("services =\n%+v\nwant\n%+v", a.Services, want)
	}
	b, _ := json.Marshal(a.Services[1])
	if strings.Contains(string(b), "last_measurement") {
		t.Errorf("zero last measurement should be omitted: %s", b)
	}
}

func TestExplanations(t *testing.T) {
	conc9of10 := []any{}
	for i := range 10 {
		id := string(rune('a' + i))
		conc9of10 = append(conc9of10, conc(id, "x", "fcc", 1))
		if i < 9 {
			conc9of10 = append(conc9of10, sla(id, "k", ws(0, 0), ws(0, 0)))
		}
	}
	for _, tt := range []struct {
		name, id, want string
		in             Input
	}{
		{"share", "sla_coverage_concession", "9 of 10 concession services have an SLA (0.90 ≥ 0.90)", mk(conc9of10...)},
		{"no data", "sla_coverage_concession", "no concession services in the catalogue (no data)", mk(own("a", "x", 1))},
		{"count", "areas_collaborating", "1 service area reporting in the last 30 days: x (1 < 2)", mk(own("a", "x", 1))},
		{"no rounding across the threshold", "services_integrated",
			"199 of 400 catalogued services reporting in the last 30 days (0.497 < 0.50)",
			mk(services(400, func(i int) Service { return own(string(rune(i+100)), "x", min(1, max(0, i-200))) }))},
		{"count of zero", "adaptive", "0 new services and 0 new SLAs in the last 90 days (0 < 1)", mk(own("a", "x", 1))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := criterion(t, Evaluate(DefaultConfig(), tt.in), tt.id)
			if c.Explanation != tt.want {
				t.Errorf("explanation = %q, want %q", c.Explanation, tt.want)
			}
		})
	}
	c := criterion(t, Evaluate(DefaultConfig(), SampleInput("x", 5, t0)), "sla_coverage_concession")
	if c.ThresholdText != ">= 0.90, with >= 1 concession service" || c.Threshold != 0.9 {
		t.Errorf("threshold = %v %q", c.Threshold, c.ThresholdText)
	}
}

func TestFormatting(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{decimal(0.9, 0.9), "0.90"},
		{decimal(0.8999, 0.9), "0.8999"},
		{decimal(0.90001, 0.9), "0.90"},
		{decimal(2.0/3, 0.5), "0.67"},
		{limit(0.9), "0.90"},
		{limit(1), "1.00"},
		{limit(0.925), "0.925"},
		{signed(0.02), "+0.02"},
		{signed(-0.001), "-0.001"},
		{signed(0), "+0.00"},
		{span(30 * Day), "30 days"},
		{span(Day), "1 day"},
		{span(36 * time.Hour), "36h0m0s"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
