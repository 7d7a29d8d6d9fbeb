package maturity

import (
	"fmt"
	"testing"
	"time"
)

func TestPilot(t *testing.T) {
	runCriterion(t, "pilot", []critCase{
		{name: "one service reporting", in: mk(own("a", "parks", 1), own("b", "water", 0)), passed: true, value: new(1.0)},
		{name: "none reporting", in: mk(own("a", "parks", 0)), passed: false, value: new(0.0)},
		{name: "empty catalogue", in: mk(), passed: false, value: new(0.0)},
		{name: "exactly min 2", cfg: func(c *Config) { c.PilotMinServices = 2 },
			in: mk(own("a", "parks", 1), own("b", "parks", 3)), passed: true, value: new(2.0)},
		{name: "below min 2", cfg: func(c *Config) { c.PilotMinServices = 2 },
			in: mk(own("a", "parks", 1), own("b", "parks", 0)), passed: false, value: new(1.0)},
	})
}

// areaServices returns n reporting own services in n distinct areas.
func areaServices(n int) []Service {
	return services(n, func(i int) Service { return own(fmt.Sprintf("s%d", i), fmt.Sprintf("area%d", i), 5) })
}

func TestAreas(t *testing.T) {
	sameArea := mk(own("a", "parks", 1), own("b", "parks", 1), own("c", "water", 0))
	for _, tt := range []struct {
		id  string
		min int
	}{{"areas_collaborating", 2}, {"areas_integrated", 3}, {"cross_cutting", 4}} {
		t.Run(tt.id, func(t *testing.T) {
			runCriterion(t, tt.id, []critCase{
				{name: "exactly min", in: mk(areaServices(tt.min)), passed: true, value: new(float64(tt.min))},
				{name: "one below min", in: mk(areaServices(tt.min - 1)), passed: false, value: new(float64(tt.min - 1))},
				{name: "above min", in: mk(areaServices(tt.min + 2)), passed: true, value: new(float64(tt.min + 2))},
				{name: "one area twice, silent area ignored", in: sameArea, passed: false, value: new(1.0)},
				{name: "empty catalogue", in: mk(), passed: false, value: new(0.0)},
			})
		})
	}
}

// providers returns n reporting concession services of n distinct providers.
func providers(n int) []Service {
	return services(n, func(i int) Service {
		return conc(fmt.Sprintf("s%d", i), "environment", fmt.Sprintf("provider-%d", i), 5)
	})
}

func TestExternal(t *testing.T) {
	oneProvider := mk(conc("a", "x", "fcc", 1), conc("b", "y", "fcc", 1), conc("c", "z", "fcc", 1))
	silent := mk(conc("a", "x", "fcc", 0), own("b", "y", 10))
	for _, tt := range []struct {
		id  string
		min int
	}{{"external_partner", 1}, {"external_collaboration", 3}} {
		t.Run(tt.id, func(t *testing.T) {
			runCriterion(t, tt.id, []critCase{
				{name: "exactly min", in: mk(providers(tt.min)), passed: true, value: new(float64(tt.min))},
				{name: "one below min", in: mk(providers(tt.min - 1)), passed: false, value: new(float64(tt.min - 1))},
				{name: "one provider, three services", in: oneProvider, passed: tt.min <= 1, value: new(1.0)},
				{name: "provider not reporting, own reporting", in: silent, passed: false, value: new(0.0)},
				{name: "empty catalogue", in: mk(), passed: false, value: new(0.0)},
			})
		})
	}
}

func TestServicesIntegrated(t *testing.T) {
	runCriterion(t, "services_integrated", []critCase{
		{name: "exactly half", in: mk(own("a", "x", 1), own("b", "x", 0)), passed: true, value: new(0.5)},
		{name: "just below half", in: mk(services(9, func(i int) Service { return own(fmt.Sprint(i), "x", i%2) })),
			passed: false, value: new(4.0 / 9)},
		{name: "all", in: mk(own("a", "x", 1)), passed: true, value: new(1.0)},
		{name: "none reporting", in: mk(own("a", "x", 0)), passed: false, value: new(0.0)},
		{name: "empty catalogue", in: mk(), passed: false, value: noData},
	})
}

func TestSLACoverage(t *testing.T) {
	for _, tt := range []struct {
		id, delivery string
		mkSvc        func(id string) Service
		other        Service
		setMin       func(*Config, int)
	}{
		{"sla_coverage_concession", DeliveryConcession, func(id string) Service { return conc(id, "x", "fcc", 1) },
			own("other", "x", 1), func(c *Config, n int) { c.SLACoverageConcessionMinServices = n }},
		{"sla_coverage_own", DeliveryOwn, func(id string) Service { return own(id, "x", 1) },
			conc("other", "x", "fcc", 1), func(c *Config, n int) { c.SLACoverageOwnMinServices = n }},
	} {
		// covered returns n services of the delivery mode, the first k with an SLA,
		// plus a service of the other mode with an SLA (which must not count).
		covered := func(n, k int) Input {
			parts := []any{tt.other, sla("other", "k", ws(10, 10), ws(0, 0))}
			for i := range n {
				id := fmt.Sprintf("s%d", i)
				parts = append(parts, tt.mkSvc(id))
				if i < k {
					parts = append(parts, sla(id, "k1", ws(0, 0), ws(0, 0)), sla(id, "k2", ws(0, 0), ws(0, 0)))
				}
			}
			return mk(parts...)
		}
		t.Run(tt.id, func(t *testing.T) {
			runCriterion(t, tt.id, []critCase{
				{name: "9 of 10", in: covered(10, 9), passed: true, value: new(0.9)},
				{name: "8 of 9", in: covered(9, 8), passed: false, value: new(8.0 / 9)},
				{name: "all", in: covered(3, 3), passed: true, value: new(1.0)},
				{name: "SLA of a retired service does not count", in: mk(covered(1, 0).Services, sla("gone", "k", ws(0, 0), ws(0, 0))),
					passed: false, value: new(0.0)},
				{name: "none of this delivery", in: mk(tt.other), passed: false, value: noData},
				{name: "fewer services than min", cfg: func(c *Config) { tt.setMin(c, 2) }, in: covered(1, 1), passed: false, value: new(1.0)},
				{name: "exactly min services", cfg: func(c *Config) { tt.setMin(c, 2) }, in: covered(2, 2), passed: true, value: new(1.0)},
			})
		})
	}
}

func TestSLAMeasured(t *testing.T) {
	// n SLAs on one service, the first k with exactly min samples, the rest one short.
	measured := func(n, k int) Input {
		return mk(own("a", "x", 100), slas(n, func(i int) SLA {
			if i < k {
				return sla("a", fmt.Sprint(i), ws(10, 0), ws(0, 0))
			}
			return sla("a", fmt.Sprint(i), ws(9, 9), ws(100, 100))
		}))
	}
	runCriterion(t, "sla_measured", []critCase{
		{name: "9 of 10 with exactly min samples", in: measured(10, 9), passed: true, value: new(0.9)},
		{name: "8 of 9", in: measured(9, 8), passed: false, value: new(8.0 / 9)},
		{name: "one short of min samples", in: measured(1, 0), passed: false, value: new(0.0)},
		{name: "min samples 5", cfg: func(c *Config) { c.MinSamples = 5 }, in: measured(1, 0), passed: true, value: new(1.0)},
		{name: "no SLAs", in: mk(own("a", "x", 100)), passed: false, value: noData},
	})
}

func TestRealtime(t *testing.T) {
	at := func(last time.Time, interval time.Duration) Service {
		s := own("a", "x", 1)
		s.LastMeasurement, s.ReportingInterval = last, interval
		return s
	}
	// n services, the first k live.
	live := func(n, k int) Input {
		return mk(services(n, func(i int) Service {
			s := own(fmt.Sprint(i), "x", 1)
			if i >= k {
				s.LastMeasurement = t0.Add(-3 * time.Hour)
			}
			return s
		}))
	}
	runCriterion(t, "realtime", []critCase{
		{name: "last exactly at T-2*interval", in: mk(at(t0.Add(-2*15*time.Minute), 15*time.Minute)), passed: true, value: new(1.0)},
		{name: "last just before T-2*interval", in: mk(at(t0.Add(-30*time.Minute-time.Nanosecond), 15*time.Minute)), passed: false, value: new(0.0)},
		{name: "never measured", in: mk(at(time.Time{}, time.Hour)), passed: false, value: new(0.0)},
		{name: "interval unset is one hour", in: mk(at(t0.Add(-2*time.Hour), 0)), passed: true, value: new(1.0)},
		{name: "interval unset, too old", in: mk(at(t0.Add(-2*time.Hour-time.Second), 0)), passed: false, value: new(0.0)},
		{name: "live_intervals 3", cfg: func(c *Config) { c.LiveIntervals = 3 },
			in: mk(at(t0.Add(-3*time.Hour), time.Hour)), passed: true, value: new(1.0)},
		{name: "9 of 10", in: live(10, 9), passed: true, value: new(0.9)},
		{name: "8 of 9", in: live(9, 8), passed: false, value: new(8.0 / 9)},
		{name: "empty catalogue", in: mk(), passed: false, value: noData},
	})
}

func TestIncidentResponse(t *testing.T) {
	cStart := t0.Add(-30 * Day)
	s := own("a", "x", 1)
	mid := t0.Add(-10 * Day)
	// n incidents due mid-window, the first k resolved on time, the rest late.
	due := func(n, k int) Input {
		var incs []Incident
		for i := range n {
			resolved := mid.Add(-time.Hour)
			if i >= k {
				resolved = mid.Add(time.Hour)
			}
			incs = append(incs, incident("a", fmt.Sprint(i), mid, resolved))
		}
		return mk(s, incs)
	}
	runCriterion(t, "incident_response", []critCase{
		{name: "deadline exactly at T-W is due", in: mk(s, incident("a", "1", cStart, cStart.Add(-time.Hour))), passed: true, value: new(1.0)},
		{name: "deadline just before T-W is not due", in: mk(s, incident("a", "1", cStart.Add(-time.Nanosecond), time.Time{})), passed: false, value: noData},
		{name: "deadline exactly at T is not yet due", in: mk(s, incident("a", "1", t0, time.Time{})), passed: false, value: noData},
		{name: "resolved exactly at deadline is on time", in: mk(s, incident("a", "1", mid, mid)), passed: true, value: new(1.0)},
		{name: "resolved after deadline", in: mk(s, incident("a", "1", mid, mid.Add(time.Second))), passed: false, value: new(0.0)},
		{name: "unresolved overdue", in: mk(s, incident("a", "1", mid, time.Time{})), passed: false, value: new(0.0)},
		{name: "9 of 10 on time", in: due(10, 9), passed: true, value: new(0.9)},
		{name: "8 of 9 on time", in: due(9, 8), passed: false, value: new(8.0 / 9)},
		{name: "no incidents", in: mk(s), passed: false, value: noData},
		{name: "incident of a retired service ignored", in: mk(s, incident("gone", "1", mid, mid)), passed: false, value: noData},
		{name: "fewer due than min", cfg: func(c *Config) { c.IncidentResponseMinDue = 2 }, in: due(1, 1), passed: false, value: new(1.0)},
		{name: "exactly min due", cfg: func(c *Config) { c.IncidentResponseMinDue = 2 }, in: due(2, 2), passed: true, value: new(1.0)},
	})
}

func TestIntegralCoverage(t *testing.T) {
	silentWithSLA := ownWithSLA(6, 6)
	silentWithSLA = append(silentWithSLA, own("z", "a0", 0), sla("z", "k", ws(0, 0), ws(0, 0)))
	runCriterion(t, "integral_coverage", []critCase{
		{name: "all, 6 areas", in: mk(ownWithSLA(6, 6)...), passed: true, value: new(1.0)},
		{name: "one without SLA", in: mk(ownWithSLA(6, 5)...), passed: false, value: new(5.0 / 6)},
		{name: "one not reporting", in: mk(silentWithSLA...), passed: false, value: new(6.0 / 7)},
		{name: "all, only 5 areas", in: mk(ownWithSLA(5, 5)...), passed: false, value: new(1.0)},
		{name: "share 0.8 allowed", cfg: func(c *Config) { c.IntegralCoverageMinShare = 0.8; c.IntegralCoverageMinAreas = 5 },
			in: mk(ownWithSLA(5, 4)...), passed: true, value: new(0.8)},
		{name: "empty catalogue", in: mk(), passed: false, value: noData},
	})
}

func TestServiceQuality(t *testing.T) {
	// n measured SLAs, the first k met; plus one unmeasured SLA that must not count.
	quality := func(n, k int) Input {
		return mk(own("a", "x", 100), sla("a", "unmeasured", ws(9, 0), ws(0, 0)), slas(n, func(i int) SLA {
			if i < k {
				return sla("a", fmt.Sprint(i), ws(20, 19), ws(0, 0)) // 0.95: exactly the objective
			}
			return sla("a", fmt.Sprint(i), ws(20, 18), ws(0, 0))
		}))
	}
	runCriterion(t, "service_quality", []critCase{
		{name: "19 of 20 met", in: quality(20, 19), passed: true, value: new(0.95)},
		{name: "18 of 19 met", in: quality(19, 18), passed: false, value: new(18.0 / 19)},
		{name: "compliance exactly objective is met", in: quality(1, 1), passed: true, value: new(1.0)},
		{name: "one sample short of the objective", in: quality(1, 0), passed: false, value: new(0.0)},
		{name: "no SLA measured", in: quality(0, 0), passed: false, value: noData},
		{name: "no SLAs", in: mk(own("a", "x", 1)), passed: false, value: noData},
	})
}

func TestContinuousImprovement(t *testing.T) {
	s := own("a", "x", 100)
	k := func(kpi string, c, p WindowStats) SLA { return sla("a", kpi, c, p) }
	lowObjective := func(kpi string, c, p WindowStats) SLA {
		x := k(kpi, c, p)
		x.Objective = 0.05
		return x
	}
	runCriterion(t, "continuous_improvement", []critCase{
		{name: "improved", in: mk(s, k("k", ws(100, 99), ws(100, 97))), passed: true, value: new(0.02)},
		{name: "equal means, all met before", in: mk(s, k("k", ws(100, 97), ws(200, 194)), k("j", ws(10, 10), ws(10, 10))), passed: true, value: new(0.0)},
		{name: "worse", in: mk(s, k("k", ws(100, 96), ws(100, 97))), passed: false, value: new(-0.01)},
		{name: "not met before, equal now", in: mk(s, k("k", ws(10, 8), ws(10, 8)), k("j", ws(100, 100), ws(100, 95))),
			passed: false, value: new(0.025)},
		{name: "not met before, improved but still not met", in: mk(s, k("k", ws(10, 9), ws(10, 8))), passed: true, value: new(0.1)},
		{name: "not met before, worse", in: mk(s, k("k", ws(10, 7), ws(10, 8)), k("j", ws(10, 10), ws(10, 8))), passed: false, value: new(0.05)},
		{name: "exactly min samples in both", in: mk(s, k("k", ws(10, 10), ws(10, 10))), passed: true, value: new(0.0)},
		{name: "P one short of min samples", in: mk(s, k("k", ws(10, 10), ws(9, 0))), passed: false, value: noData},
		{name: "C one short of min samples", in: mk(s, k("k", ws(9, 9), ws(10, 0))), passed: false, value: noData},
		{name: "only SLAs measured in both count", in: mk(s, k("k", ws(10, 10), ws(10, 10)), k("j", ws(10, 0), ws(5, 5))), passed: true, value: new(0.0)},
		// 0.3+0.0 against 0.1+0.2, which floats get wrong.
		{name: "means compared exactly", in: mk(s, lowObjective("k", ws(10, 3), ws(10, 1)), lowObjective("j", ws(10, 0), ws(10, 2))),
			passed: true, value: new(0.0)},
		{name: "fewer SLAs than min", cfg: func(c *Config) { c.ContinuousImprovementMinSLAs = 2 },
			in: mk(s, k("k", ws(10, 10), ws(10, 10))), passed: false, value: new(0.0)},
		{name: "no SLAs", in: mk(s), passed: false, value: noData},
	})
}

func TestOpenData(t *testing.T) {
	open := func(s Service) Service { s.OpenData = true; return s }
	runCriterion(t, "open_data", []critCase{
		{name: "exactly half", in: mk(open(own("a", "x", 0)), own("b", "x", 0)), passed: true, value: new(0.5)},
		{name: "just below half", in: mk(open(own("a", "x", 0)), own("b", "x", 0), own("c", "x", 0)), passed: false, value: new(1.0 / 3)},
		{name: "none", in: mk(own("a", "x", 0)), passed: false, value: new(0.0)},
		{name: "empty catalogue", in: mk(), passed: false, value: noData},
	})
}

func TestAdaptive(t *testing.T) {
	aStart := t0.Add(-90 * Day)
	registered := func(at time.Time) Service { s := own("a", "x", 1); s.FirstRegistered = at; return s }
	defined := func(at time.Time) SLA { k := sla("old", "k", ws(0, 0), ws(0, 0)); k.FirstDefined = at; return k }
	old := own("old", "x", 1)
	runCriterion(t, "adaptive", []critCase{
		{name: "service registered exactly at T-90d", in: mk(old, registered(aStart)), passed: true, value: new(1.0)},
		{name: "service registered just before T-90d", in: mk(old, registered(aStart.Add(-time.Nanosecond))), passed: false, value: new(0.0)},
		{name: "SLA defined exactly at T-90d", in: mk(old, defined(aStart)), passed: true, value: new(1.0)},
		{name: "SLA defined just before T-90d", in: mk(old, defined(aStart.Add(-time.Nanosecond))), passed: false, value: new(0.0)},
		{name: "service and SLA new", in: mk(old, registered(t0.Add(-time.Hour)), defined(t0.Add(-time.Hour))), passed: true, value: new(2.0)},
		{name: "SLA of a retired service ignored", in: mk(old, SLA{Service: "gone", KPI: "k", FirstDefined: t0.Add(-Day)}), passed: false, value: new(0.0)},
		{name: "adaptation window 120d", cfg: func(c *Config) { c.Adaptation = 120 * Day },
			in: mk(old, registered(aStart.Add(-Day))), passed: true, value: new(1.0)},
		{name: "empty catalogue", in: mk(), passed: false, value: new(0.0)},
	})
}
