package sim

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

var starts = []time.Time{
	time.Date(2026, 3, 15, 10, 17, 0, 0, time.UTC),
	time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC),
	time.Date(2026, 11, 20, 18, 45, 30, 0, time.UTC),
}

func mustNew(t *testing.T, o Options) *Generator {
	t.Helper()
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestDesignCoversEveryLevel checks the table has a municipality for each
// level 1-5 and one that flaps between 4 and 5. That each lands on its
// designed level is checked by the real evaluator, on the stored history
// (services/evaluator/internal/reader/designed_test.go).
func TestDesignCoversEveryLevel(t *testing.T) {
	seen := map[int]bool{}
	flaps := false
	for _, m := range Designed() {
		seen[m.Level] = true
		flaps = flaps || m.Flaps
		if m.Why == "" {
			t.Errorf("%s: no Why", m.ID)
		}
	}
	for l := 1; l <= 5; l++ {
		if !seen[l] {
			t.Errorf("no municipality designed for level %d", l)
		}
	}
	if !flaps {
		t.Error("no municipality flaps between Gestionat and Optimitzat")
	}
}

func marshalAll(t *testing.T, evs []*contract.Event) [][]byte {
	t.Helper()
	out := make([][]byte, len(evs))
	for i, e := range evs {
		b, err := contract.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func TestDeterministic(t *testing.T) {
	start := starts[0]
	a := marshalAll(t, mustNew(t, Options{Seed: 7, Start: start, Backfill: 10 * Day}).History())
	b := marshalAll(t, mustNew(t, Options{Seed: 7, Start: start, Backfill: 10 * Day}).History())
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("event %d differs:\n%s\n%s", i, a[i], b[i])
		}
	}
	c := marshalAll(t, mustNew(t, Options{Seed: 8, Start: start, Backfill: 10 * Day}).History())
	if bytes.Equal(a[len(a)-1], c[len(c)-1]) {
		t.Error("seeds 7 and 8 gave the same last event")
	}
}

// TestRerunSharesIDs: a backfill started an hour later repeats the ids (and
// bytes) of the measurements both runs generate, so the broker and the
// platform deduplicate a re-run.
func TestRerunSharesIDs(t *testing.T) {
	g1 := mustNew(t, Options{Seed: 1, Start: starts[1], Backfill: 2 * Day})
	g2 := mustNew(t, Options{Seed: 1, Start: starts[1].Add(time.Hour), Backfill: 2 * Day})
	first := map[string][]byte{}
	_ = g1.Observations(g1.HistoryStart(), g1.Start(), func(e *contract.Event) error {
		first[e.ID], _ = contract.Marshal(e)
		return nil
	})
	shared := 0
	_ = g2.Observations(g1.HistoryStart().Add(time.Hour), g1.Start(), func(e *contract.Event) error {
		b, ok := first[e.ID]
		if !ok {
			t.Fatalf("event %s of the second run is not in the first", e.ID)
		}
		if got, _ := contract.Marshal(e); !bytes.Equal(got, b) {
			t.Fatalf("event %s differs between runs", e.ID)
		}
		shared++
		return nil
	})
	if shared == 0 {
		t.Fatal("no shared events")
	}
}

func TestEventsAreValid(t *testing.T) {
	start := starts[2]
	g := mustNew(t, Options{Seed: 1, Start: start})
	hist := g.History()
	ids := map[[2]string]bool{}
	seenMeasurement := false
	kinds := map[string]int{}
	for i, e := range hist {
		b, err := contract.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, rej := contract.Decode(e.Subject(), b, contract.Rules{Now: start})
		if rej != nil {
			t.Fatalf("event %d %s rejected: %v\n%s", i, e.ID, rej, b)
		}
		if got.ID != e.ID || !got.Time.Equal(e.Time) {
			t.Fatalf("event %d does not round-trip", i)
		}
		key := [2]string{e.Municipality + "/" + e.Publisher, e.ID}
		if ids[key] {
			t.Fatalf("duplicate identity %v", key)
		}
		ids[key] = true
		kinds[e.Type]++
		if e.Kind() == contract.KindCatalog {
			if seenMeasurement {
				t.Fatalf("catalogue event %s after a measurement", e.ID)
			}
			if !e.Time.Before(start) {
				t.Fatalf("catalogue event %s at %s, not before the start", e.ID, e.Time)
			}
		} else {
			seenMeasurement = true
			if e.Time.Before(g.HistoryStart()) || !e.Time.Before(start) {
				t.Fatalf("event %s at %s outside the history", e.ID, e.Time)
			}
		}
	}
	for _, typ := range []string{contract.TypeServiceRegistered, contract.TypeSLADefined, contract.TypeKPIMeasured,
		contract.TypeIncidentOpened, contract.TypeIncidentResolved} {
		if kinds[typ] == 0 {
			t.Errorf("no %s events", typ)
		}
	}
	t.Logf("%d events: %v", len(hist), kinds)
}

// TestObservationsSplit: generating a range in pieces (as live mode does)
// gives the same events as generating it at once.
func TestObservationsSplit(t *testing.T) {
	g := mustNew(t, Options{Seed: 3, Start: starts[0], Backfill: 3 * Day})
	collect := func(ranges ...time.Time) []string {
		var ids []string
		for i := 0; i+1 < len(ranges); i++ {
			_ = g.Observations(ranges[i], ranges[i+1], func(e *contract.Event) error {
				ids = append(ids, e.ID)
				return nil
			})
		}
		return ids
	}
	a, b := g.HistoryStart(), g.Start().Add(2*Day)
	whole := collect(a, b)
	parts := collect(a, a.Add(7*time.Hour+13*time.Second), a.Add(30*time.Hour), a.Add(30*time.Hour), b)
	if !slices.Equal(whole, parts) {
		t.Fatalf("split generation differs: %d vs %d events", len(whole), len(parts))
	}
}

func TestGenerateAndEncode(t *testing.T) {
	evs, err := Generate(1, starts[0], 2*Day)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := Encode(evs)
	if err != nil || len(msgs) != len(evs) {
		t.Fatalf("%v %d", err, len(msgs))
	}
	last := msgs[len(msgs)-1]
	if last.ID != evs[len(evs)-1].ID || last.Subject != evs[len(evs)-1].Subject() {
		t.Fatalf("%+v", last)
	}
	if _, err := Generate(1, starts[0], 400*Day); err == nil {
		t.Fatal("backfill over the lateness accepted")
	}
}
