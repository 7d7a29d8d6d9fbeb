package reader

import (
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/storage"
)

// TestTally feeds per-series counts as the server would return them and
// checks the publisher rule: the provider's and the council's series
// count, others are unattributed (known municipality) or unknown.
func TestTally(t *testing.T) {
	cat := BuildCatalogue([]storage.CatalogueRow{
		reg("vic", "aigua", "aigues", ns(-1000*time.Hour), 1),
		sla("vic", "aigua", "pressio", 2, ns(-1000*time.Hour), 2),
	}, at)
	slas, services := countedSeries(cat)
	if len(slas) != 2 || len(services) != 2 {
		t.Fatalf("counted series: %v %v; want provider and council for each", slas, services)
	}
	h := NewHashes(cat)
	hash := func(m, svc, k, p string) uint64 {
		return storage.SeriesHash(storage.Series{Municipality: m, Service: svc, KPI: k, Publisher: p})
	}
	service := func(m, svc, p string) uint64 {
		return storage.ServiceHash(storage.Series{Municipality: m, Service: svc, Publisher: p})
	}
	provider, council := hash("vic", "aigua", "pressio", "aigues"), hash("vic", "aigua", "pressio", contract.Council)
	vic := storage.MunicipalityHash("vic")
	last := ns(-time.Minute)
	tl := NewTally(cat)
	labels := []string{"1h", "6h"}
	tl.AddSeries([]storage.SeriesCounts{
		{Series: provider, ServiceHash: service("vic", "aigua", "aigues"), MunicipalityHash: vic, SamplesC: 10, MeetingC: 9, SamplesP: 8, MeetingP: 4, Last: last,
			ShortCounts: storage.ShortCounts{ShortSamples0: 2, ShortMeeting0: 1}},
		{Series: council, ServiceHash: service("vic", "aigua", contract.Council), MunicipalityHash: vic, SamplesC: 2, MeetingC: 2, SamplesP: 0, MeetingP: 0, Last: last - 5,
			ShortCounts: storage.ShortCounts{ShortSamples0: 1, ShortMeeting0: 1}},
		// another KPI of the provider: service only
		{Series: hash("vic", "aigua", "cabal", "aigues"), ServiceHash: service("vic", "aigua", "aigues"), MunicipalityHash: vic, SamplesC: 3, Last: last + 1},
		// intruder: unattributed
		{Series: hash("vic", "aigua", "pressio", "intrus"), ServiceHash: service("vic", "aigua", "intrus"), MunicipalityHash: vic, SamplesC: 5, Last: last + 2,
			ShortCounts: storage.ShortCounts{ShortSamples0: 9, ShortSamples1: 9, ShortMeeting0: 9, ShortMeeting1: 9}},
		// unknown municipalities
		{Series: hash("x", "aigua", "pressio", "aigues"), ServiceHash: service("x", "aigua", "aigues"), MunicipalityHash: storage.MunicipalityHash("x"), SamplesC: 7, Last: last + 3},
		{Series: hash("y", "s", "k", "p"), ServiceHash: service("y", "s", "p"), MunicipalityHash: storage.MunicipalityHash("y"), SamplesC: 1, Last: last + 4},
	}, labels, h)
	// A second part of the windows adds up with the first.
	tl.AddSeries([]storage.SeriesCounts{{Series: provider, ServiceHash: service("vic", "aigua", "aigues"), MunicipalityHash: vic, SamplesP: 2, MeetingP: 2, Last: last - 9}}, labels, h)
	tl.fold()
	if tl.CountC["vic"]["aigua"] != 15 || !tl.Last["vic"]["aigua"].Equal(at.Add(-time.Minute+1)) {
		t.Errorf("service: %d in C, last %s", tl.CountC["vic"]["aigua"], tl.Last["vic"]["aigua"])
	}
	st := tl.SLAs["vic"][maturity.SLAKey{Service: "aigua", KPI: "pressio"}]
	if st.C != (maturity.WindowStats{Samples: 12, Meeting: 11}) || st.P != (maturity.WindowStats{Samples: 10, Meeting: 6}) {
		t.Errorf("SLA: C %+v, P %+v", st.C, st.P)
	}
	if tl.Unattributed["vic"] != 5 || tl.Unknown != 8 || len(tl.Unattributed) != 1 {
		t.Errorf("unattributed %v, unknown %d", tl.Unattributed, tl.Unknown)
	}
	if got := st.Short["1h"]; got != (maturity.WindowStats{Samples: 3, Meeting: 2}) || len(st.Short) != 1 {
		t.Errorf("short windows %+v", st.Short)
	}
}

func TestSilentServicesLookedUpFurther(t *testing.T) {
	cat := BuildCatalogue([]storage.CatalogueRow{
		reg("vic", "own", contract.Council, ns(-1000*time.Hour), 1),
		reg("vic", "conc", "p", ns(-1000*time.Hour), 2),
		reg("vic", "busy", "p", ns(-1000*time.Hour), 3),
	}, at)
	tl := NewTally(cat)
	tl.service("vic")
	tl.Last["vic"]["busy"] = at.Add(-time.Hour)
	silent := tl.silent(cat)
	want := map[storage.Series]bool{
		{Municipality: "vic", Service: "own", Publisher: contract.Council}:  true,
		{Municipality: "vic", Service: "conc", Publisher: "p"}:              true,
		{Municipality: "vic", Service: "conc", Publisher: contract.Council}: true,
	}
	if len(silent) != len(want) {
		t.Fatalf("silent %v", silent)
	}
	for _, s := range silent {
		if !want[s] {
			t.Errorf("unexpected %+v", s)
		}
	}
	tl.AddOlder([]storage.LastMeasurement{{Municipality: "vic", Service: "conc", Last: ns(-90 * 24 * time.Hour)}})
	if !tl.Last["vic"]["conc"].Equal(at.Add(-90 * 24 * time.Hour)) {
		t.Errorf("older last %s", tl.Last["vic"]["conc"])
	}
}

// TestShortWindowsFit: the rules' short windows fit the columns the
// queries count them in.
func TestShortWindowsFit(t *testing.T) {
	if len(maturity.ShortWindows) > storage.MaxShortWindows {
		t.Fatalf("%d short windows; storage counts at most %d", len(maturity.ShortWindows), storage.MaxShortWindows)
	}
}
