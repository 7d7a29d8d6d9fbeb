package maturity

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// Evaluate applies the rules of maturity.md to one municipality at in.At.
// It is pure and deterministic: the result does not depend on the order of
// the input slices. SLAs and incidents of services that are not in
// in.Services are ignored, as are incidents opened at or after T and
// resolutions at or after T. cfg is expected to pass Validate.
func Evaluate(cfg Config, in Input) Assessment {
	f := newFacts(cfg, in)
	a := Assessment{
		Municipality:  in.Municipality,
		At:            in.At,
		WindowSeconds: int64(cfg.Window / time.Second),
		Criteria:      make([]Criterion, 0, len(rules)),
		Missing:       []Criterion{},
		SLAs:          f.slaResults(),
		Services:      f.serviceResults(),
	}
	failed := MaxLevel + 1 // lowest level with a failing criterion
	for _, r := range rules {
		c := r.eval(f)
		c.Level, c.LevelName, c.ID = r.level, LevelName(r.level), r.id
		if !c.Passed {
			failed = min(failed, r.level)
		}
		a.Criteria = append(a.Criteria, c)
	}
	a.Level = failed - 1
	a.LevelName = LevelName(a.Level)
	for _, c := range a.Criteria {
		if c.Level == a.Level+1 && !c.Passed {
			a.Missing = append(a.Missing, c)
		}
	}
	return a
}

// facts are the derived quantities of maturity.md for one municipality.
type facts struct {
	cfg              Config
	at               time.Time
	cStart, aStart   time.Time
	services         []Service // catalogue, sorted by id
	hasSLA           map[string]bool
	slas             []slaFacts // sorted by service, then kpi
	incidents        []Incident // of catalogued services, opened before T
	reporting        int        // services reporting in C
	areas, externals []string   // areas(C) and external(C), sorted
}

type slaFacts struct {
	SLA
	measuredC, measuredP bool
	metC, metP           bool
}

func newFacts(cfg Config, in Input) *facts {
	f := &facts{
		cfg:    cfg,
		at:     in.At,
		cStart: in.At.Add(-cfg.Window),
		aStart: in.At.Add(-cfg.Adaptation),
		hasSLA: map[string]bool{},
	}
	f.services = slices.SortedFunc(slices.Values(in.Services), func(a, b Service) int { return cmp.Compare(a.ID, b.ID) })
	catalogued := make(map[string]bool, len(f.services))
	areas, externals := map[string]bool{}, map[string]bool{}
	for _, s := range f.services {
		catalogued[s.ID] = true
		if s.MeasurementsC > 0 {
			f.reporting++
			areas[s.Area] = true
			if s.Delivery == DeliveryConcession && s.Provider != Council && s.Provider != "" {
				externals[s.Provider] = true
			}
		}
	}
	f.areas = slices.Sorted(maps.Keys(areas))
	f.externals = slices.Sorted(maps.Keys(externals))
	if len(in.SLAs) > 0 {
		f.slas = make([]slaFacts, 0, len(in.SLAs))
	}
	for _, k := range in.SLAs {
		if !catalogued[k.Service] {
			continue
		}
		f.hasSLA[k.Service] = true
		sf := slaFacts{SLA: k, measuredC: f.measured(k.C), measuredP: f.measured(k.P)}
		sf.metC = sf.measuredC && compliance(k.C) >= k.Objective
		sf.metP = sf.measuredP && compliance(k.P) >= k.Objective
		f.slas = append(f.slas, sf)
	}
	slices.SortFunc(f.slas, func(a, b slaFacts) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.KPI, b.KPI))
	})
	if len(in.Incidents) > 0 {
		f.incidents = make([]Incident, 0, len(in.Incidents))
	}
	for _, i := range in.Incidents {
		if catalogued[i.Service] && i.OpenedAt.Before(in.At) {
			f.incidents = append(f.incidents, i)
		}
	}
	return f
}

// measured reports measured(k, X) from the stats of k in X.
func (f *facts) measured(w WindowStats) bool { return w.Samples >= f.cfg.MinSamples }

// compliance is Meeting/Samples; callers check measured first.
func compliance(w WindowStats) float64 { return float64(w.Meeting) / float64(w.Samples) }

// live reports live(s): a latest counted measurement at or after
// T - LiveIntervals * reporting interval.
func (f *facts) live(s Service) bool {
	return !s.LastMeasurement.IsZero() && !s.LastMeasurement.Before(f.at.Add(-time.Duration(f.cfg.LiveIntervals)*interval(s)))
}

// interval is the service's reporting interval, the contract's default
// when unset.
func interval(s Service) time.Duration {
	if s.ReportingInterval <= 0 {
		return DefaultReportingInterval
	}
	return s.ReportingInterval
}

// resolved reports whether i was resolved before T.
func (f *facts) resolved(i Incident) bool {
	return !i.ResolvedAt.IsZero() && i.ResolvedAt.Before(f.at)
}

// inC reports whether t falls in C = [T-W, T).
func (f *facts) inC(t time.Time) bool { return !t.Before(f.cStart) && t.Before(f.at) }

// inA reports whether t falls in A = [T-Adaptation, T).
func (f *facts) inA(t time.Time) bool { return !t.Before(f.aStart) && t.Before(f.at) }

func (f *facts) slaResults() []SLAResult {
	out := make([]SLAResult, 0, len(f.slas))
	for _, k := range f.slas {
		r := SLAResult{
			Service: k.Service, KPI: k.KPI, Name: k.Name, Unit: k.Unit,
			Direction: k.Direction, Target: k.Target, Objective: k.Objective,
			SamplesC: k.C.Samples, SamplesP: k.P.Samples, Met: k.metC,
		}
		if k.measuredC {
			c := compliance(k.C)
			r.Compliance = new(c)
			r.ErrorBudgetRemaining = new(errorBudget(k.C, k.Objective))
		}
		if k.measuredP {
			r.ComplianceP = new(compliance(k.P))
		}
		out = append(out, r)
	}
	return out
}

// errorBudget is 1 - (1-compliance)/(1-objective); with objective 1 it is 1
// when every sample meets the target, else 0.
func errorBudget(w WindowStats, objective float64) float64 {
	if objective >= 1 {
		if w.Meeting == w.Samples {
			return 1
		}
		return 0
	}
	return 1 - (1-compliance(w))/(1-objective)
}

func (f *facts) serviceResults() []ServiceResult {
	open := map[string]int{}
	for _, i := range f.incidents {
		if !f.resolved(i) {
			open[i.Service]++
		}
	}
	out := make([]ServiceResult, 0, len(f.services))
	for _, s := range f.services {
		out = append(out, ServiceResult{
			ID: s.ID, Name: s.Name, Area: s.Area, Delivery: s.Delivery, Provider: s.Provider,
			OpenData: s.OpenData, HasSLA: f.hasSLA[s.ID], Reporting: s.MeasurementsC > 0, Live: f.live(s),
			MeasurementsC: s.MeasurementsC, LastMeasurement: s.LastMeasurement, OpenIncidents: open[s.ID],
			ReportingIntervalSeconds: int64(interval(s) / time.Second),
		})
	}
	return out
}
