package reader

import (
	"cmp"
	"slices"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/storage"
)

// Catalogue is the catalogue and SLAs in force at T, per municipality.
type Catalogue struct {
	// Known holds the municipalities whose council has published at least
	// one catalogue event at or before T.
	Known    map[string]bool
	Services map[string]map[string]*maturity.Service // municipality -> service id
	SLAs     map[string]map[maturity.SLAKey]*maturity.SLA
}

// size counts the catalogued services and the SLAs in force.
func (c *Catalogue) size() (services, slas int) {
	for _, ss := range c.Services {
		services += len(ss)
	}
	for _, ks := range c.SLAs {
		slas += len(ks)
	}
	return services, slas
}

// Provider returns who may report for a catalogued service, and whether it
// is catalogued.
func (c *Catalogue) Provider(m, service string) (string, bool) {
	s, ok := c.Services[m][service]
	if !ok {
		return "", false
	}
	return s.Provider, true
}

// Counted applies the publisher rule: an event of a service counts when the
// service is catalogued at T and its publisher is the service's provider at
// T or the council.
func (c *Catalogue) Counted(m, service, publisher string) bool {
	p, ok := c.Provider(m, service)
	return ok && (publisher == p || publisher == contract.Council)
}

// nanos is an instant in nanoseconds since the epoch as a UTC time.
func nanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }

// later orders catalogue events by event time, then by arrival (stream
// sequence): of two events at the same instant, the one later in the
// stream wins.
func later(a, b *storage.CatalogueRow) bool {
	return a.Time > b.Time || a.Time == b.Time && a.Seq > b.Seq
}

// BuildCatalogue applies the catalogue rules of maturity.md to the
// council's catalogue events: events after T are ignored; for each service
// its latest registration, unless a retirement is strictly later in time;
// for each (service, kpi) of a catalogued service its latest SLA
// definition; first registrations and definitions ever (up to T) for the
// adaptive criterion.
func BuildCatalogue(rows []storage.CatalogueRow, at time.Time) *Catalogue {
	c := &Catalogue{Known: map[string]bool{}, Services: map[string]map[string]*maturity.Service{}, SLAs: map[string]map[maturity.SLAKey]*maturity.SLA{}}
	type svcKey struct{ m, s string }
	type slaKey struct {
		m string
		k maturity.SLAKey
	}
	reg, ret := map[svcKey]*storage.CatalogueRow{}, map[svcKey]*storage.CatalogueRow{}
	firstReg := map[svcKey]int64{}
	def := map[slaKey]*storage.CatalogueRow{}
	firstDef := map[slaKey]int64{}
	limit := at.UnixNano()
	for i := range rows {
		x := &rows[i]
		if x.Time > limit { // not yet happened at T
			continue
		}
		c.Known[x.Municipality] = true
		sk := svcKey{x.Municipality, x.Service}
		switch x.Type {
		case contract.TypeServiceRegistered:
			if cur := reg[sk]; cur == nil || later(x, cur) {
				reg[sk] = x
			}
			if f, ok := firstReg[sk]; !ok || x.Time < f {
				firstReg[sk] = x.Time
			}
		case contract.TypeServiceRetired:
			if cur := ret[sk]; cur == nil || later(x, cur) {
				ret[sk] = x
			}
		case contract.TypeSLADefined:
			k := slaKey{x.Municipality, maturity.SLAKey{Service: x.Service, KPI: x.KPI}}
			if cur := def[k]; cur == nil || later(x, cur) {
				def[k] = x
			}
			if f, ok := firstDef[k]; !ok || x.Time < f {
				firstDef[k] = x.Time
			}
		}
	}
	for sk, x := range reg {
		if rt := ret[sk]; rt != nil && rt.Time > x.Time { // retired later than its latest registration
			continue
		}
		if c.Services[sk.m] == nil {
			c.Services[sk.m] = map[string]*maturity.Service{}
		}
		c.Services[sk.m][sk.s] = &maturity.Service{
			ID: x.Service, Name: x.Name, Area: x.Area, Delivery: x.Delivery, Provider: x.Provider,
			ReportingInterval: time.Duration(x.Interval) * time.Second, OpenData: x.OpenData == 1,
			FirstRegistered: nanos(firstReg[sk]),
		}
	}
	for k, x := range def {
		if _, ok := c.Services[k.m][k.k.Service]; !ok {
			continue
		}
		if c.SLAs[k.m] == nil {
			c.SLAs[k.m] = map[maturity.SLAKey]*maturity.SLA{}
		}
		c.SLAs[k.m][k.k] = &maturity.SLA{
			Service: x.Service, KPI: x.KPI, Name: x.Name, Unit: x.Unit, Direction: x.Direction,
			Target: x.Target, Objective: x.Objective, FirstDefined: nanos(firstDef[k]),
		}
	}
	return c
}

// CountedIncidents applies the incident rules of maturity.md: only events
// before T from a publisher counted for the service they name; an incident
// is identified by (municipality, service, incident), so an opening or a
// resolution naming another service is another incident; the earliest
// counted opening and the earliest counted resolution stand (of two
// openings at the same instant, the one with the shorter target, then the
// lower priority name, as the incident rollup chooses). Incidents never
// opened are dropped. Each municipality's list is sorted by incident id,
// then service.
func CountedIncidents(rows []storage.IncidentRow, cat *Catalogue, at time.Time) map[string][]maturity.Incident {
	type key struct{ m, service, incident string }
	opened := map[key]*storage.IncidentRow{}
	resolved := map[key]int64{}
	limit := at.UnixNano()
	for i := range rows {
		x := &rows[i]
		if x.Time >= limit || !cat.Counted(x.Municipality, x.Service, x.Publisher) {
			continue
		}
		k := key{x.Municipality, x.Service, x.Incident}
		switch x.Type {
		case contract.TypeIncidentOpened:
			if cur := opened[k]; cur == nil || earlierOpening(x, cur) {
				opened[k] = x
			}
		case contract.TypeIncidentResolved:
			if cur, ok := resolved[k]; !ok || x.Time < cur {
				resolved[k] = x.Time
			}
		}
	}
	out := map[string][]maturity.Incident{}
	for k, x := range opened {
		in := maturity.Incident{Service: x.Service, ID: x.Incident, Priority: x.Priority,
			OpenedAt: nanos(x.Time), Deadline: nanos(x.Time).Add(time.Duration(x.Target) * time.Second)}
		if rt, ok := resolved[k]; ok {
			in.ResolvedAt = nanos(rt)
		}
		out[k.m] = append(out[k.m], in)
	}
	sortIncidents(out)
	return out
}

// earlierOpening orders openings of one incident: by instant, then target,
// then priority.
func earlierOpening(a, b *storage.IncidentRow) bool {
	return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.Target, b.Target), cmp.Compare(a.Priority, b.Priority)) < 0
}

// Seen keeps the incidents the rules can see at T with windows of length
// w: due in C = [T-w, T), or not resolved before T. The others change no
// criterion and no metric; the incident rollup never returns them.
func Seen(byMunicipality map[string][]maturity.Incident, at time.Time, w time.Duration) map[string][]maturity.Incident {
	out := map[string][]maturity.Incident{}
	for m, l := range byMunicipality {
		for _, i := range l {
			due := !i.Deadline.Before(at.Add(-w)) && i.Deadline.Before(at)
			if due || i.ResolvedAt.IsZero() || !i.ResolvedAt.Before(at) {
				out[m] = append(out[m], i)
			}
		}
	}
	return out
}

// IncidentsOf turns the incidents the rollup selected
// (storage.IncidentsAt) into the rules' incidents, per municipality,
// sorted by incident id, then service: the hashes name the municipality
// and service of each, ids its incident id.
func IncidentsOf(rows []storage.IncidentState, ids []storage.IncidentID, h *Hashes) map[string][]maturity.Incident {
	names := make(map[uint64]string, len(ids))
	for _, x := range ids {
		names[x.Key] = x.Incident
	}
	out := map[string][]maturity.Incident{}
	for _, x := range rows {
		s, ok := h.Service[x.ServiceHash]
		if !ok {
			continue
		}
		in := maturity.Incident{Service: s.Service, ID: names[x.Key], Priority: x.Priority(),
			OpenedAt: nanos(x.Opened), Deadline: nanos(x.Opened).Add(time.Duration(x.Target) * time.Second)}
		if x.Resolved != 0 {
			in.ResolvedAt = nanos(x.Resolved)
		}
		out[s.Municipality] = append(out[s.Municipality], in)
	}
	sortIncidents(out)
	return out
}

func sortIncidents(byMunicipality map[string][]maturity.Incident) {
	for _, l := range byMunicipality {
		slices.SortFunc(l, func(a, b maturity.Incident) int {
			return cmp.Or(cmp.Compare(a.ID, b.ID), cmp.Compare(a.Service, b.Service))
		})
	}
}
