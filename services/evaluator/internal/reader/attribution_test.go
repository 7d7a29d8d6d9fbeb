package reader

import (
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/storage"
)

var at = time.Date(2026, 11, 20, 12, 0, 0, 500_000_000, time.UTC)

// ns is at+d in nanoseconds.
func ns(d time.Duration) int64 { return at.Add(d).UnixNano() }

func reg(m, service, provider string, t int64, seq uint64) storage.CatalogueRow {
	delivery := contract.DeliveryConcession
	if provider == contract.Council {
		delivery = contract.DeliveryOwn
	}
	return storage.CatalogueRow{Municipality: m, Type: contract.TypeServiceRegistered, Service: service, Time: t, Seq: seq,
		Name: service + " " + provider, Area: "water", Delivery: delivery, Provider: provider, Interval: 3600}
}

func retire(m, service string, t int64, seq uint64) storage.CatalogueRow {
	return storage.CatalogueRow{Municipality: m, Type: contract.TypeServiceRetired, Service: service, Time: t, Seq: seq}
}

func sla(m, service, kpi string, target float64, t int64, seq uint64) storage.CatalogueRow {
	return storage.CatalogueRow{Municipality: m, Type: contract.TypeSLADefined, Service: service, KPI: kpi, Time: t, Seq: seq,
		Direction: contract.HigherIsBetter, Target: target, Objective: 0.9}
}

func TestCatalogueAtT(t *testing.T) {
	day := 24 * time.Hour
	cat := BuildCatalogue([]storage.CatalogueRow{
		reg("vic", "aigua", "aigues", ns(-100*day), 1),
		reg("vic", "aigua", "aigues-noves", ns(-10*day), 2),  // re-registered: new provider
		reg("vic", "aigua", "futur", ns(time.Nanosecond), 3), // after T: ignored
		reg("vic", "now", contract.Council, ns(0), 4),        // exactly T: in force
		reg("vic", "late", contract.Council, ns(1), 5),       // T + 1 ns: not yet
		reg("vic", "gone", contract.Council, ns(-50*day), 6),
		retire("vic", "gone", ns(-1), 7), // retired before T
		reg("vic", "back", contract.Council, ns(-50*day), 8),
		retire("vic", "back", ns(-20*day), 9),
		reg("vic", "back", contract.Council, ns(-5*day), 10), // registered again after its retirement
		reg("vic", "soon", contract.Council, ns(-50*day), 11),
		retire("vic", "soon", ns(1), 12), // retirement after T: still in force
		reg("vic", "same", contract.Council, ns(-50*day), 13),
		retire("vic", "same", ns(-50*day), 14),         // same instant: not strictly later, stays
		reg("berga", "x", contract.Council, ns(1), 15), // Berga's only event is after T
	}, at)
	want := map[string]string{"aigua": "aigues-noves", "now": contract.Council, "back": contract.Council, "soon": contract.Council, "same": contract.Council}
	if len(cat.Services["vic"]) != len(want) {
		t.Errorf("services %v, want %v", keys(cat.Services["vic"]), want)
	}
	for id, p := range want {
		if s := cat.Services["vic"][id]; s == nil || s.Provider != p {
			t.Errorf("%s: %+v, want provider %s", id, s, p)
		}
	}
	if got := cat.Services["vic"]["aigua"].FirstRegistered; !got.Equal(at.Add(-100 * day)) {
		t.Errorf("first registration %s, want the first ever", got)
	}
	if got := cat.Services["vic"]["back"].FirstRegistered; !got.Equal(at.Add(-50 * day)) {
		t.Errorf("re-registered after retirement: first registration %s, want the first ever", got)
	}
	if !cat.Known["vic"] || cat.Known["berga"] || len(cat.Known) != 1 {
		t.Errorf("known %v, want only vic (berga's only event is after T)", cat.Known)
	}
	if !cat.Counted("vic", "aigua", "aigues-noves") || !cat.Counted("vic", "aigua", contract.Council) ||
		cat.Counted("vic", "aigua", "aigues") || cat.Counted("vic", "late", contract.Council) {
		t.Error("publisher rule: only the provider at T and the council count, for catalogued services")
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestTiesByArrival(t *testing.T) {
	same := ns(-time.Hour)
	for _, tt := range []struct {
		name     string
		rows     []storage.CatalogueRow
		provider string
		target   float64
	}{
		{"later in the stream wins", []storage.CatalogueRow{reg("vic", "s", "a", same, 1), reg("vic", "s", "b", same, 2),
			sla("vic", "s", "k", 1, same, 3), sla("vic", "s", "k", 2, same, 4)}, "b", 2},
		{"whatever the order read", []storage.CatalogueRow{reg("vic", "s", "b", same, 2), reg("vic", "s", "a", same, 1),
			sla("vic", "s", "k", 2, same, 4), sla("vic", "s", "k", 1, same, 3)}, "b", 2},
		{"time before arrival", []storage.CatalogueRow{reg("vic", "s", "b", same-1, 9), reg("vic", "s", "a", same, 1),
			sla("vic", "s", "k", 2, same-1, 9), sla("vic", "s", "k", 1, same, 3)}, "a", 1},
	} {
		cat := BuildCatalogue(tt.rows, at)
		s, k := cat.Services["vic"]["s"], cat.SLAs["vic"][maturity.SLAKey{Service: "s", KPI: "k"}]
		if s == nil || s.Provider != tt.provider || k == nil || k.Target != tt.target {
			t.Errorf("%s: service %+v, SLA %+v; want provider %s, target %v", tt.name, s, k, tt.provider, tt.target)
		}
	}
}

func TestSLARedefinitions(t *testing.T) {
	day := 24 * time.Hour
	cat := BuildCatalogue([]storage.CatalogueRow{
		reg("vic", "s", "p", ns(-200*day), 1),
		sla("vic", "s", "k", 1, ns(-150*day), 2),
		sla("vic", "s", "k", 2, ns(-10*day), 3), // redefined: target 2, first definition unchanged
		sla("vic", "s", "k", 3, ns(1), 4),       // after T
		sla("vic", "s", "new", 5, ns(0), 5),     // new KPI exactly at T
		sla("vic", "gone", "k", 1, ns(-day), 6), // service not catalogued: no SLA
	}, at)
	k := cat.SLAs["vic"][maturity.SLAKey{Service: "s", KPI: "k"}]
	if k == nil || k.Target != 2 || !k.FirstDefined.Equal(at.Add(-150*day)) {
		t.Errorf("redefined SLA: %+v", k)
	}
	if n := cat.SLAs["vic"][maturity.SLAKey{Service: "s", KPI: "new"}]; n == nil || !n.FirstDefined.Equal(at) {
		t.Errorf("SLA defined at T: %+v", n)
	}
	if len(cat.SLAs["vic"]) != 2 {
		t.Errorf("SLAs %v", cat.SLAs["vic"])
	}
}

func inc(m, publisher, typ, service, id string, t int64, target uint32) storage.IncidentRow {
	return storage.IncidentRow{Municipality: m, Publisher: publisher, Type: typ, Service: service, Incident: id, Priority: "high", Target: target, Time: t}
}

// TestIncidentHijacks: a provider registered for one service cannot move
// another service's incident, neither by resolving it early (back-dated)
// nor by filing an earlier opening with another deadline; the incident's
// own provider and the council still count, earliest first.
func TestIncidentHijacks(t *testing.T) {
	day := 24 * time.Hour
	cat := BuildCatalogue([]storage.CatalogueRow{
		reg("vic", "llum", "citelum", ns(-300*day), 1),
		reg("vic", "aigua", "aigues", ns(-300*day), 2),
	}, at)
	opened := ns(-3 * day)
	rows := []storage.IncidentRow{
		inc("vic", "citelum", contract.TypeIncidentOpened, "llum", "inc-1", opened, 4*3600),
		// Hijack 1: the water provider resolves the lighting incident early,
		// back-dated, naming the lighting service (not counted for it) ...
		inc("vic", "aigues", contract.TypeIncidentResolved, "llum", "inc-1", opened+1, 0),
		// ... and naming its own service (another incident, never opened).
		inc("vic", "aigues", contract.TypeIncidentResolved, "aigua", "inc-1", opened+1, 0),
		// Hijack 2: an earlier opening with another deadline, by the water
		// provider for the lighting service, and for its own.
		inc("vic", "aigues", contract.TypeIncidentOpened, "llum", "inc-1", opened-int64(day), 400*86400),
		inc("vic", "aigues", contract.TypeIncidentOpened, "aigua", "inc-1", opened-int64(day), 400*86400),
		// An unknown publisher, and events at and after T.
		inc("vic", "intrus", contract.TypeIncidentResolved, "llum", "inc-1", opened+2, 0),
		inc("vic", "citelum", contract.TypeIncidentResolved, "llum", "inc-1", ns(0), 0),
		// The lighting provider resolves it late; the council earlier, in time.
		inc("vic", "citelum", contract.TypeIncidentResolved, "llum", "inc-1", opened+6*3600*1e9, 0),
		inc("vic", contract.Council, contract.TypeIncidentResolved, "llum", "inc-1", opened+3*3600*1e9, 0),
		// A later opening of the same incident does not move it.
		inc("vic", contract.Council, contract.TypeIncidentOpened, "llum", "inc-1", opened+3600*1e9, 60),
	}
	got := CountedIncidents(rows, cat, at)["vic"]
	if len(got) != 2 {
		t.Fatalf("incidents %+v, want lighting's inc-1 and water's own inc-1", got)
	}
	llum, aigua := got[1], got[0]
	if llum.Service != "llum" || !llum.OpenedAt.Equal(at.Add(-3*day)) || !llum.Deadline.Equal(at.Add(-3*day+4*time.Hour)) ||
		!llum.ResolvedAt.Equal(at.Add(-3*day+3*time.Hour)) {
		t.Errorf("lighting incident moved: %+v", llum)
	}
	if aigua.Service != "aigua" || !aigua.OpenedAt.Equal(at.Add(-4*day)) || !aigua.ResolvedAt.Equal(at.Add(-3*day+1)) {
		t.Errorf("water's own incident: %+v", aigua)
	}
}

func TestIncidentsBeforeT(t *testing.T) {
	cat := BuildCatalogue([]storage.CatalogueRow{reg("vic", "s", "p", ns(-time.Hour*1000), 1)}, at)
	got := CountedIncidents([]storage.IncidentRow{
		inc("vic", "p", contract.TypeIncidentOpened, "s", "before", ns(-1), 60),
		inc("vic", "p", contract.TypeIncidentOpened, "s", "at", ns(0), 60),
		inc("vic", "p", contract.TypeIncidentResolved, "s", "before", ns(0), 0),
		inc("vic", "p", contract.TypeIncidentResolved, "s", "gone", ns(-1), 0), // never opened
	}, cat, at)["vic"]
	if len(got) != 1 || got[0].ID != "before" || !got[0].ResolvedAt.IsZero() {
		t.Errorf("%+v: want only the incident opened 1 ns before T, unresolved (its resolution is at T)", got)
	}
}
