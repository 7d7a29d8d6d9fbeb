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
	// The server's answer to HashNames, with made-up hashes.
	h := NewHashes([]storage.HashName{
		{Kind: storage.HashOfSeries, Hash: 11, Municipality: "vic", Service: "aigua", KPI: "pressio", Publisher: "aigues"},
		{Kind: storage.HashOfSeries, Hash: 12, Municipality: "vic", Service: "aigua", KPI: "pressio", Publisher: contract.Council},
		{Kind: storage.HashOfService, Hash: 21, Municipality: "vic", Service: "aigua", Publisher: "aigues"},
		{Kind: storage.HashOfService, Hash: 22, Municipality: "vic", Service: "aigua", Publisher: contract.Council},
		{Kind: storage.HashOfMunicipality, Hash: 31, Municipality: "vic"},
	})
	last := ns(-time.Minute)
	tl := NewTally(cat)
	tl.AddSeries([]storage.SeriesCounts{
		{Series: 11, ServiceHash: 21, MunicipalityHash: 31, SamplesC: 10, MeetingC: 9, SamplesP: 8, MeetingP: 4, Last: last},
		{Series: 12, ServiceHash: 22, MunicipalityHash: 31, SamplesC: 2, MeetingC: 2, SamplesP: 0, MeetingP: 0, Last: last - 5},
		{Series: 13, ServiceHash: 21, MunicipalityHash: 31, SamplesC: 3, Last: last + 1}, // another KPI of the provider: service only
		{Series: 14, ServiceHash: 24, MunicipalityHash: 31, SamplesC: 5, Last: last + 2}, // intruder: unattributed
		{Series: 15, ServiceHash: 25, MunicipalityHash: 99, SamplesC: 7, Last: last + 3}, // unknown municipality
		{Series: 16, ServiceHash: 26, MunicipalityHash: 98, SamplesC: 1, Last: last + 4}, // another unknown one
	}, h)
	if tl.CountC["vic"]["aigua"] != 15 || !tl.Last["vic"]["aigua"].Equal(at.Add(-time.Minute+1)) {
		t.Errorf("service: %d in C, last %s", tl.CountC["vic"]["aigua"], tl.Last["vic"]["aigua"])
	}
	st := tl.SLAs["vic"][maturity.SLAKey{Service: "aigua", KPI: "pressio"}]
	if st.C != (maturity.WindowStats{Samples: 12, Meeting: 11}) || st.P != (maturity.WindowStats{Samples: 8, Meeting: 4}) {
		t.Errorf("SLA: C %+v, P %+v", st.C, st.P)
	}
	if tl.Unattributed["vic"] != 5 || tl.Unknown != 8 || len(tl.Unattributed) != 1 {
		t.Errorf("unattributed %v, unknown %d", tl.Unattributed, tl.Unknown)
	}
	tl.AddShort([]storage.ShortCounts{
		{Series: 11, Samples: []uint64{2, 0}, Meeting: []uint64{1, 0}},
		{Series: 12, Samples: []uint64{1, 0}, Meeting: []uint64{1, 0}},
		{Series: 14, Samples: []uint64{9, 9}, Meeting: []uint64{9, 9}}, // not counted
	}, []string{"1h", "6h"}, h)
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
