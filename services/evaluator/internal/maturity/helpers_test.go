package maturity

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// t0 is the evaluation instant T of the tests.
var t0 = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// svc is a service catalogued long ago, reporting hourly; with m > 0 it
// has m measurements in C, the latest a minute before T.
func svc(id, area, delivery, provider string, m int) Service {
	s := Service{
		ID: id, Name: id, Area: area, Delivery: delivery, Provider: provider,
		ReportingInterval: time.Hour, FirstRegistered: t0.Add(-365 * Day), MeasurementsC: m,
	}
	if m > 0 {
		s.LastMeasurement = t0.Add(-time.Minute)
	}
	return s
}

func own(id, area string, m int) Service { return svc(id, area, DeliveryOwn, Council, m) }

func conc(id, area, provider string, m int) Service {
	return svc(id, area, DeliveryConcession, provider, m)
}

func ws(samples, meeting int) WindowStats { return WindowStats{Samples: samples, Meeting: meeting} }

// sla is an SLA defined long ago with objective 0.95.
func sla(service, kpi string, c, p WindowStats) SLA {
	return SLA{
		Service: service, KPI: kpi, Name: kpi, Unit: "ratio", Direction: HigherIsBetter,
		Target: 0.9, Objective: 0.95, FirstDefined: t0.Add(-365 * Day), C: c, P: p,
	}
}

// incident opened a day before its deadline.
func incident(service, id string, deadline, resolved time.Time) Incident {
	return Incident{Service: service, ID: id, Priority: "high", OpenedAt: deadline.Add(-Day), Deadline: deadline, ResolvedAt: resolved}
}

// mk builds an input at t0 from Services, SLAs, Incidents and slices of them.
func mk(parts ...any) Input {
	in := Input{Municipality: "testville", At: t0}
	for _, p := range parts {
		switch p := p.(type) {
		case Service:
			in.Services = append(in.Services, p)
		case []Service:
			in.Services = append(in.Services, p...)
		case SLA:
			in.SLAs = append(in.SLAs, p)
		case []SLA:
			in.SLAs = append(in.SLAs, p...)
		case Incident:
			in.Incidents = append(in.Incidents, p)
		case []Incident:
			in.Incidents = append(in.Incidents, p...)
		default:
			panic(fmt.Sprintf("mk: unexpected %T", p))
		}
	}
	return in
}

// services returns n services made by f(i).
func services(n int, f func(i int) Service) []Service {
	out := make([]Service, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// slas returns n SLAs made by f(i).
func slas(n int, f func(i int) SLA) []SLA {
	out := make([]SLA, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// ownWithSLA returns n own services in area "a<i>", each reporting, the
// first withSLA of them with a measured, met SLA.
func ownWithSLA(n, withSLA int) []any {
	var parts []any
	for i := range n {
		id := fmt.Sprintf("s%02d", i)
		parts = append(parts, own(id, fmt.Sprintf("a%d", i), 20))
		if i < withSLA {
			parts = append(parts, sla(id, "k", ws(20, 20), ws(20, 20)))
		}
	}
	return parts
}

func criterion(t *testing.T, a Assessment, id string) Criterion {
	t.Helper()
	for _, c := range a.Criteria {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no criterion %q", id)
	return Criterion{}
}

// critCase is one row of a criterion table.
type critCase struct {
	name   string
	cfg    func(*Config) // nil: DefaultConfig
	in     Input
	passed bool
	value  *float64 // nil: no data
}

// noData is the value of a criterion without data.
var noData *float64

func runCriterion(t *testing.T, id string, cases []critCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			a := Evaluate(cfg, tc.in)
			c := criterion(t, a, id)
			if c.Passed != tc.passed {
				t.Errorf("passed = %v, want %v (%s)", c.Passed, tc.passed, c.Explanation)
			}
			switch {
			case tc.value == nil && c.Value != nil:
				t.Errorf("value = %v, want no data (%s)", *c.Value, c.Explanation)
			case tc.value != nil && c.Value == nil:
				t.Errorf("value = no data, want %v (%s)", *tc.value, c.Explanation)
			case tc.value != nil && math.Abs(*c.Value-*tc.value) > 1e-12:
				t.Errorf("value = %v, want %v (%s)", *c.Value, *tc.value, c.Explanation)
			}
			if c.Explanation == "" || strings.Contains(c.Explanation, "NaN") || strings.Contains(c.Explanation, "\n") {
				t.Errorf("explanation = %q", c.Explanation)
			}
			if c.Value == nil && !strings.HasSuffix(c.Explanation, "(no data)") {
				t.Errorf("explanation without value should say no data: %q", c.Explanation)
			}
			checkJSON(t, a)
			t.Log(c.Explanation)
		})
	}
}

// checkJSON asserts a marshals without NaN or infinities.
func checkJSON(t *testing.T, a Assessment) {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if s := string(b); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") {
		t.Errorf("JSON has NaN or Inf: %s", s)
	}
}
