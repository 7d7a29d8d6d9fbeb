package sim

import (
	"sort"
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

// An independent, deliberately plain re-implementation of maturity.md with
// the default thresholds, used only to check the designed levels.

type criterion struct {
	level  int
	id     string
	passed bool
	value  float64
}

type assessment struct {
	level    int
	criteria []criterion
	facts    map[string]float64
}

func (a assessment) failed(id string) bool {
	for _, c := range a.criteria {
		if c.id == id {
			return !c.passed
		}
	}
	panic("unknown criterion " + id)
}

func (a assessment) failing() []string {
	var out []string
	for _, c := range a.criteria {
		if !c.passed {
			out = append(out, c.id)
		}
	}
	return out
}

const (
	window     = 30 * Day
	adaptation = 90 * Day
	minSamples = 10
)

type svcState struct {
	reg       *contract.ServiceRegistered
	firstReg  time.Time
	lastMeas  time.Time
	reportedC bool
}

type slaState struct {
	def      *contract.SLADefined
	first    time.Time
	n, met   [2]int // by window: 0 = C, 1 = P
	measured [2]bool
}

func ratio(n, d int) (float64, bool) {
	if d == 0 {
		return 0, false
	}
	return float64(n) / float64(d), true
}

// assess evaluates municipality muni at instant T from events (any order).
func assess(events []*contract.Event, muni string, T time.Time) assessment {
	var evs []*contract.Event
	for _, e := range events {
		if e.Municipality == muni {
			evs = append(evs, e)
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].Time.Before(evs[j].Time) })
	cStart, pStart, aStart := T.Add(-window), T.Add(-2*window), T.Add(-adaptation)
	inC := func(t time.Time) bool { return !t.Before(cStart) && t.Before(T) }
	inP := func(t time.Time) bool { return !t.Before(pStart) && t.Before(cStart) }

	// Catalogue at T.
	svcs := map[string]*svcState{}
	retired := map[string]time.Time{}
	regTime := map[string]time.Time{}
	slaDefs := map[[2]string]*slaState{}
	for _, e := range evs {
		if e.Time.After(T) {
			continue
		}
		switch d := e.Data.(type) {
		case *contract.ServiceRegistered:
			st := svcs[d.Service]
			if st == nil {
				st = &svcState{firstReg: e.Time}
				svcs[d.Service] = st
			}
			st.reg = d
			regTime[d.Service] = e.Time
		case *contract.ServiceRetired:
			retired[d.Service] = e.Time
		case *contract.SLADefined:
			k := [2]string{d.Service, d.KPI}
			st := slaDefs[k]
			if st == nil {
				st = &slaState{first: e.Time}
				slaDefs[k] = st
			}
			st.def = d
		}
	}
	for s, rt := range retired {
		if rt.After(regTime[s]) {
			delete(svcs, s)
		}
	}
	for k := range slaDefs {
		if svcs[k[0]] == nil {
			delete(slaDefs, k)
		}
	}
	counted := func(e *contract.Event, service string) (*svcState, bool) {
		st := svcs[service]
		if st == nil || !e.Time.Before(T) {
			return nil, false
		}
		return st, e.Publisher == contract.Council || e.Publisher == st.reg.Provider
	}

	type inc struct {
		opened   time.Time
		target   time.Duration
		resolved time.Time
		has      bool
	}
	incs := map[string]*inc{}
	for _, e := range evs {
		switch d := e.Data.(type) {
		case *contract.KPIMeasured:
			st, ok := counted(e, d.Service)
			if !ok {
				continue
			}
			if e.Time.After(st.lastMeas) {
				st.lastMeas = e.Time
			}
			if inC(e.Time) {
				st.reportedC = true
			}
			sla := slaDefs[[2]string{d.Service, d.KPI}]
			if sla == nil {
				continue
			}
			w := -1
			if inC(e.Time) {
				w = 0
			} else if inP(e.Time) {
				w = 1
			}
			if w >= 0 {
				sla.n[w]++
				if sla.def.Meets(d.Value) {
					sla.met[w]++
				}
			}
		case *contract.IncidentOpened:
			if _, ok := counted(e, d.Service); ok {
				key := d.Service + "/" + d.Incident
				if incs[key] == nil {
					incs[key] = &inc{}
				}
				incs[key].opened = e.Time
				incs[key].target = time.Duration(d.ResolutionTargetSeconds) * time.Second
			}
		case *contract.IncidentResolved:
			if _, ok := counted(e, d.Service); ok {
				key := d.Service + "/" + d.Incident
				if incs[key] == nil {
					incs[key] = &inc{}
				}
				incs[key].resolved, incs[key].has = e.Time, true
			}
		}
	}

	areas, external := map[string]bool{}, map[string]bool{}
	var nSvc, nReporting, nLive, nOpen int
	var nConc, nConcSLA, nOwn, nOwnSLA, nCovered int
	adaptive := 0
	hasSLA := map[string]bool{}
	for k, sla := range slaDefs {
		hasSLA[k[0]] = true
		if !sla.first.Before(aStart) && sla.first.Before(T) {
			adaptive++
		}
	}
	for id, st := range svcs {
		nSvc++
		if st.reportedC {
			nReporting++
			areas[st.reg.Area] = true
			if st.reg.Delivery == contract.DeliveryConcession {
				external[st.reg.Provider] = true
			}
		}
		iv := time.Duration(st.reg.ReportingIntervalSeconds) * time.Second
		if !st.lastMeas.IsZero() && !st.lastMeas.Before(T.Add(-2*iv)) {
			nLive++
		}
		if st.reg.OpenData {
			nOpen++
		}
		if st.reg.Delivery == contract.DeliveryConcession {
			nConc++
			if hasSLA[id] {
				nConcSLA++
			}
		} else {
			nOwn++
			if hasSLA[id] {
				nOwnSLA++
			}
		}
		if st.reportedC && hasSLA[id] {
			nCovered++
		}
		if !st.firstReg.Before(aStart) && st.firstReg.Before(T) {
			adaptive++
		}
	}
	var nSLA, nMeasured, nMet, nBoth int
	var sumC, sumP float64
	improving := true
	for _, sla := range slaDefs {
		nSLA++
		for w := 0; w < 2; w++ {
			sla.measured[w] = sla.n[w] >= minSamples
		}
		comp := func(w int) float64 { return float64(sla.met[w]) / float64(sla.n[w]) }
		if sla.measured[0] {
			nMeasured++
			if comp(0) >= sla.def.Objective {
				nMet++
			}
		}
		if sla.measured[0] && sla.measured[1] {
			nBoth++
			sumC += comp(0)
			sumP += comp(1)
			if comp(1) < sla.def.Objective && !(comp(0) > comp(1)) {
				improving = false
			}
		}
	}
	due, onTime := 0, 0
	for _, in := range incs {
		if in.opened.IsZero() {
			continue
		}
		deadline := in.opened.Add(in.target)
		if !inC(deadline) {
			continue
		}
		due++
		if in.has && in.resolved.Before(T) && !in.resolved.After(deadline) {
			onTime++
		}
	}

	share := func(n, d int, min float64) (float64, bool) {
		r, ok := ratio(n, d)
		return r, ok && r >= min
	}
	var cs []criterion
	add := func(level int, id string, value float64, passed bool) {
		cs = append(cs, criterion{level: level, id: id, passed: passed, value: value})
	}
	add(1, "pilot", float64(nReporting), nReporting >= 1)
	add(2, "areas_collaborating", float64(len(areas)), len(areas) >= 2)
	add(3, "areas_integrated", float64(len(areas)), len(areas) >= 3)
	add(3, "external_partner", float64(len(external)), len(external) >= 1)
	v, ok := share(nReporting, nSvc, 0.5)
	add(3, "services_integrated", v, ok)
	v, ok = share(nConcSLA, nConc, 0.9)
	add(4, "sla_coverage_concession", v, ok && nConc >= 1)
	v, ok = share(nOwnSLA, nOwn, 0.9)
	add(4, "sla_coverage_own", v, ok && nOwn >= 1)
	v, ok = share(nMeasured, nSLA, 0.9)
	add(4, "sla_measured", v, ok)
	v, ok = share(nLive, nSvc, 0.9)
	add(4, "realtime", v, ok)
	v, ok = share(onTime, due, 0.9)
	add(4, "incident_response", v, ok && due >= 1)
	add(4, "cross_cutting", float64(len(areas)), len(areas) >= 4)
	v, ok = share(nCovered, nSvc, 1.0)
	add(5, "integral_coverage", v, ok && len(areas) >= 6)
	v, ok = share(nMet, nMeasured, 0.95)
	add(5, "service_quality", v, ok)
	add(5, "continuous_improvement", sumC-sumP, nBoth >= 1 && sumC/float64(max(nBoth, 1)) >= sumP/float64(max(nBoth, 1)) && improving)
	v, ok = share(nOpen, nSvc, 0.5)
	add(5, "open_data", v, ok)
	add(5, "external_collaboration", float64(len(external)), len(external) >= 3)
	add(5, "adaptive", float64(adaptive), adaptive >= 1)

	level := 0
	for l := 1; l <= 5; l++ {
		all := true
		for _, c := range cs {
			if c.level == l && !c.passed {
				all = false
			}
		}
		if !all {
			break
		}
		level = l
	}
	return assessment{level: level, criteria: cs, facts: map[string]float64{
		"services": float64(nSvc), "reporting": float64(nReporting), "live": float64(nLive),
		"areas": float64(len(areas)), "external": float64(len(external)), "slas": float64(nSLA),
		"measured": float64(nMeasured), "met": float64(nMet), "due": float64(due), "on_time": float64(onTime),
	}}
}
