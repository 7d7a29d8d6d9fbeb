package storage_test

import (
	"cmp"
	"context"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// compareHashes checks the hashes the evaluator computes in Go against
// cityHash64 on both engines, for the fixtures' names and for strings of
// every length CityHash treats apart (0-16, 17-32, 33-64 and more bytes),
// with bytes outside ASCII.
func compareHashes(t *testing.T, ss []side, series, services []storage.Series) {
	t.Helper()
	names := append(slices.Clone(series), services...)
	for _, n := range []int{0, 1, 16, 17, 32, 33, 64, 65, 200} {
		s := strings.Repeat("x", n)
		names = append(names, storage.Series{Municipality: s, Service: "l'Hospitalet-" + s, KPI: "temps·espera", Publisher: s + "é"})
	}
	x := &storage.External{Name: "names", Columns: []storage.Column{{Name: "m", Type: "String"}, {Name: "s", Type: "String"},
		{Name: "k", Type: "String"}, {Name: "p", Type: "String"}}}
	for _, n := range names {
		x.Append(n.Municipality, n.Service, n.KPI, n.Publisher)
	}
	type row struct {
		M  string `ch:"m"`
		S  string `ch:"s"`
		K  string `ch:"k"`
		P  string `ch:"p"`
		H4 uint64 `ch:"h4"`
		H3 uint64 `ch:"h3"`
		H1 uint64 `ch:"h1"`
	}
	q := storage.Query{SQL: "SELECT m, s, k, p, cityHash64(m, s, k, p) AS h4, cityHash64(m, s, p) AS h3, cityHash64(m) AS h1 FROM names",
		External: []*storage.External{x}}
	for _, s := range ss {
		var rows []row
		if err := s.e.Select(context.Background(), &rows, q); err != nil {
			t.Fatalf("hashes on %s: %v", s.name, err)
		}
		if len(rows) != len(names) {
			t.Fatalf("hashes on %s: %d rows for %d names", s.name, len(rows), len(names))
		}
		for _, r := range rows {
			n := storage.Series{Municipality: r.M, Service: r.S, KPI: r.K, Publisher: r.P}
			if storage.SeriesHash(n) != r.H4 || storage.ServiceHash(n) != r.H3 || storage.MunicipalityHash(r.M) != r.H1 {
				t.Errorf("%s: the hashes of %+v differ from the server's (%d %d %d)", s.name, n, r.H4, r.H3, r.H1)
			}
		}
	}
}

// sameRows is same for a query that may answer no row.
func sameRows[T any](t *testing.T, builder string, ss []side, q storage.Query) []T {
	t.Helper()
	covered[builder] = true
	var first []T
	for i, s := range ss {
		var rows []T
		if err := s.e.Select(context.Background(), &rows, q); err != nil {
			t.Fatalf("%s on %s: %v\n%s", builder, s.name, err, q.SQL)
		}
		normalize(rows)
		if i == 0 {
			first = rows
		} else if !reflect.DeepEqual(rows, first) {
			t.Errorf("%s differs\n%s: %+v\n%s: %+v", builder, ss[0].name, first, s.name, rows)
		}
	}
	return first
}

// windowTotals adds up the parts of an evaluation's counts per series.
type windowTotals map[uint64]storage.SeriesCounts

func (w windowTotals) add(rows []storage.SeriesCounts) windowTotals {
	for _, r := range rows {
		cur, ok := w[r.Series]
		if !ok {
			cur = r
			cur.SamplesC, cur.MeetingC, cur.SamplesP, cur.MeetingP, cur.Last, cur.ShortCounts = 0, 0, 0, 0, 0, storage.ShortCounts{}
		}
		cur.SamplesC += r.SamplesC
		cur.MeetingC += r.MeetingC
		cur.SamplesP += r.SamplesP
		cur.MeetingP += r.MeetingP
		cur.Last = max(cur.Last, r.Last)
		cur.ShortCounts.Add(r.ShortCounts)
		w[r.Series] = cur
	}
	return w
}

// only keeps the series of keep.
func (w windowTotals) only(keep []uint64) windowTotals {
	out := windowTotals{}
	for _, x := range keep {
		if r, ok := w[x]; ok {
			out[x] = r
		}
	}
	return out
}

// compareWindowCounts counts the windows of evaluations at T in every way
// the evaluator may read them: all from measurements, all from the
// rollups, and in parts cut at a midnight (where the rollups' coverage
// starts) and at an instant, with the series of an identity stored twice
// read from measurements with FINAL. Every way must give the same totals,
// on both engines, for every municipality or one, with and without short
// windows, and with windows shorter than the short ones.
func compareWindowCounts(t *testing.T, ss []side, table string) {
	t.Helper()
	ctx := context.Background()
	// An identity stored twice inside C, 1 ns before an hour, as racing
	// replicas would: the rollups add both copies.
	dup := storagetest.Event("vic", "aigues", T.Add(-2*time.Hour-time.Nanosecond), &contract.KPIMeasured{Service: "aigua", KPI: "pressio", Value: 3})
	for _, s := range ss {
		storagetest.StoreFrom(t, s.e, 1000, dup)
		storagetest.StoreFrom(t, s.e, 1001, dup)
		id := storage.Identity{Municipality: dup.Municipality, Publisher: dup.Publisher, ID: dup.ID}
		if err := s.e.Insert(ctx, storage.Duplicates, storage.DuplicateColumns, [][]any{storage.DuplicateRow(id, false, T)}); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	if c := same[storage.Coverage](t, "MeasurementCoverage", ss, storage.MeasurementCoverage(), false); len(c) != 1 || c[0].Rows == 0 || c[0].FromDay != 0 {
		t.Errorf("coverage %+v; want a database created empty to be covered from the start", c)
	}
	stored := same[storage.StoredSeries](t, "SeriesStoredTwice", ss, storage.SeriesStoredTwice(), false)
	if len(stored) != 2 {
		t.Fatalf("series stored twice: %+v; want the fixtures' one and vic's", stored)
	}
	excluded := make([]uint64, len(stored))
	for i, x := range stored {
		excluded[i] = x.Series
	}
	pressio := storage.SeriesHash(storage.Series{Municipality: "vic", Service: "aigua", KPI: "pressio", Publisher: "aigues"})
	midnight := time.Date(2026, 10, 10, 0, 0, 0, 0, time.UTC)
	instant := T.Add(-10*day + 300*time.Millisecond)
	short := []storage.Window{{Label: "1h", D: time.Hour}, {Label: "6h", D: 6 * time.Hour}, {Label: "1d", D: day}, {Label: "3d", D: 3 * day}}
	for _, c := range []struct {
		w       time.Duration
		windows []storage.Window
	}{{30 * day, short}, {30 * day, nil}, {90 * time.Minute, short}, {45*day + 7*time.Hour + 1, short}} {
		for _, m := range []string{"", "vic"} {
			span := storage.Span{Targets: table, At: T, W: c.w, Windows: c.windows, Municipality: m}
			span.From, span.To = storage.Oldest(T, c.w, c.windows), T
			part := func(from, to time.Time) storage.Span { s := span; s.From, s.To = from, to; return s }
			raw := windowTotals{}.add(same[storage.SeriesCounts](t, "CountSeries", ss, storage.CountSeries(span, false, nil), false))
			exact := windowTotals{}.add(same[storage.SeriesCounts](t, "CountSeries", ss, storage.CountSeries(span, true, nil), false))
			if r, e := raw[pressio], exact[pressio]; c.w == 30*day && (e.SamplesC != 7 || r.SamplesC != 8) {
				t.Errorf("W %s: samples in C %d with FINAL, %d without; want 7 and 8 (the copy)", c.w, e.SamplesC, r.SamplesC)
			}
			rollups := windowTotals{}.add(same[storage.SeriesCounts](t, "CountRollups", ss, storage.CountRollups(span, nil), false))
			if !reflect.DeepEqual(rollups, raw) {
				t.Errorf("W %s, %q: rollups differ from measurements\nrollups:      %+v\nmeasurements: %+v", c.w, m, rollups, raw)
			}
			copies := same[storage.SeriesCounts](t, "CountSeries", ss, storage.CountSeries(span, true, stored), false)
			whole := sameRows[storage.SeriesCounts](t, "CountRollupParts", ss, storage.CountRollupParts(span, storage.WholeDays, excluded, nil))
			var some []uint64 // every other series: a reader counts again those that changed
			for i, r := range whole {
				if i%2 == 0 {
					some = append(some, r.Series)
				}
			}
			subset := sameRows[storage.SeriesCounts](t, "CountRollupParts", ss, storage.CountRollupParts(span, storage.WholeDays, excluded, some))
			if want := (windowTotals{}).add(whole); len(subset) != len(some) || !reflect.DeepEqual(want.only(some), (windowTotals{}).add(subset)) {
				t.Errorf("W %s, %q: whole days of some series differ from those of all", c.w, m)
			}
			compareWholeDaysShift(t, ss, span, excluded, whole)
			samples := sameRows[storage.SeriesSamples](t, "WholeDaySamples", ss, storage.WholeDaySamples(span, excluded))
			if len(samples) < len(whole)/2 {
				t.Errorf("W %s, %q: samples on whole days of %d series, counts of %d", c.w, m, len(samples), len(whole))
			}
			ways := map[string]windowTotals{
				"rollups, copies apart": windowTotals{}.
					add(same[storage.SeriesCounts](t, "CountRollups", ss, storage.CountRollups(span, excluded), false)).add(copies),
				"whole and edge days apart": windowTotals{}.add(whole).
					add(sameRows[storage.SeriesCounts](t, "CountRollupParts", ss, storage.CountRollupParts(span, storage.EdgeDays, excluded, nil))).
					add(copies),
			}
			for name, cut := range map[string]time.Time{"cut at a midnight": midnight, "cut at an instant": instant} {
				if cut.Before(span.From) {
					continue
				}
				ways[name] = windowTotals{}.
					add(same[storage.SeriesCounts](t, "CountSeries", ss, storage.CountSeries(part(span.From, cut), true, nil), false)).
					add(same[storage.SeriesCounts](t, "CountRollups", ss, storage.CountRollups(part(cut, T), excluded), false)).
					add(same[storage.SeriesCounts](t, "CountSeries", ss, storage.CountSeries(part(cut, T), true, stored), false))
			}
			for name, got := range ways {
				if !reflect.DeepEqual(got, exact) {
					t.Errorf("W %s, %q, %s: differs from measurements with FINAL\ngot:  %+v\nwant: %+v", c.w, m, name, got, exact)
				}
			}
		}
	}
}

// compareWholeDaysShift checks that the whole days' counts of earlier
// spans (T on another day, before and after), shifted to span, are its
// whole days' counts (whole), and their samples its samples.
func compareWholeDaysShift(t *testing.T, ss []side, span storage.Span, excluded []uint64, whole []storage.SeriesCounts) {
	t.Helper()
	samplesOf := func(s storage.Span) map[uint64]uint64 {
		out := map[uint64]uint64{}
		for _, x := range sameRows[storage.SeriesSamples](t, "WholeDaySamples", ss, storage.WholeDaySamples(s, excluded)) {
			out[x.Series] += x.Samples
		}
		return out
	}
	want, wantSamples := windowTotals{}.add(whole), samplesOf(span)
	for _, move := range []time.Duration{-day - 5*time.Hour, -3*day + time.Hour, 2*day + 1} {
		before := span
		before.At = span.At.Add(move)
		before.From, before.To = storage.Oldest(before.At, span.W, span.Windows), before.At
		q, ok := storage.WholeDaysShift(before, span, excluded)
		if !ok {
			t.Fatalf("W %s: spans %s apart do not compare", span.W, move)
		}
		shifts := sameRows[storage.ShiftedCounts](t, "WholeDaysShift", ss, q)
		got := windowTotals{}.add(sameRows[storage.SeriesCounts](t, "CountRollupParts", ss, storage.CountRollupParts(before, storage.WholeDays, excluded, nil)))
		gotSamples := samplesOf(before)
		for _, x := range shifts {
			cur, ok := got[x.Series]
			if !ok {
				cur = storage.SeriesCounts{Series: x.Series, ServiceHash: x.ServiceHash, MunicipalityHash: x.MunicipalityHash}
			}
			if !cur.Shift(&x) || int64(gotSamples[x.Series])+x.Samples < 0 {
				t.Errorf("W %s, moved %s: series %d loses more than it had", span.W, move, x.Series)
			}
			gotSamples[x.Series] = uint64(int64(gotSamples[x.Series]) + x.Samples)
			// The latest instant, when the days gained hold a later one
			// or it is still on a whole day; else taken from the count.
			switch {
			case x.Last > cur.Last:
				cur.Last = x.Last
			case cur.Last != 0 && !span.WholeDay(time.Unix(0, cur.Last)):
				cur.Last = want[x.Series].Last
			}
			got[x.Series] = cur
		}
		for series := range got {
			if gotSamples[series] == 0 {
				delete(got, series)
			}
		}
		for series, n := range gotSamples {
			if n == 0 {
				delete(gotSamples, series)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("W %s, %q, shifted from T%+v: differs from the whole days' counts\ngot:  %+v\nwant: %+v", span.W, span.Municipality, move, got, want)
		}
		if !reflect.DeepEqual(gotSamples, wantSamples) {
			t.Errorf("W %s, %q, shifted from T%+v: samples %v, want %v", span.W, span.Municipality, move, gotSamples, wantSamples)
		}
	}
}

// compareValueKeys stores measurements with values at the ends of the
// float range, both zeros and the smallest normal ones, and checks that both engines keep
// each under the key the evaluator computes (storage.ValueKey), and that
// keys order as values do.
func compareValueKeys(t *testing.T, ss []side) {
	t.Helper()
	// (The smallest normal numbers: chDB reads a subnormal literal as 0.)
	values := []float64{0, math.Copysign(0, -1), 1.5, -1.5, 2.5, 0x1p-1022, -0x1p-1022, 1e-300, math.MaxFloat64, -math.MaxFloat64, 42, -42}
	var evs []*contract.Event
	for i, v := range values {
		evs = append(evs, storagetest.Event("claus", "p", T.Add(-100*day+time.Duration(i)), &contract.KPIMeasured{Service: "s", KPI: "k", Value: v}))
	}
	var want []uint64
	for _, v := range values {
		want = append(want, storage.ValueKey(v))
	}
	slices.Sort(want)
	q := storage.Query{SQL: "SELECT arrayJoin(pointMap.vKey) AS k FROM " + storage.MeasurementDays + " WHERE mseries = ? ORDER BY k",
		Args: []any{storage.MunicipalityHash("claus")}}
	for _, s := range ss {
		storagetest.Store(t, s.e, evs...)
		var rows []struct {
			K uint64 `ch:"k"`
		}
		if err := s.e.Select(context.Background(), &rows, q); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var got []uint64
		for _, r := range rows {
			got = append(got, r.K)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: value keys %v, want %v", s.name, got, want)
		}
	}
	sorted := slices.Clone(values)
	slices.SortFunc(sorted, func(a, b float64) int { return cmp.Compare(a, b) })
	for i := 1; i < len(sorted); i++ {
		a, b := storage.ValueKey(sorted[i-1]), storage.ValueKey(sorted[i])
		if a > b || (a == b) != (sorted[i-1] == sorted[i]) {
			t.Errorf("keys of %v and %v: %d, %d", sorted[i-1], sorted[i], a, b)
		}
	}
}

// compareIncidents reads the fixtures' incidents at T and two hours later
// on both engines. At T, i3 is counted (due in C, unresolved); not i1
// (due after T and resolved before T: the intruder's resolution is not
// counted) nor i2 (opened at T). At T+2h, i1 is due in C and resolved in
// time, i2 open: all three.
func compareIncidents(t *testing.T, ss []side, counted []uint64) {
	t.Helper()
	aigua := storage.ServiceHash(storage.Series{Municipality: "vic", Service: "aigua", Publisher: "aigues"})
	key := func(i string) uint64 { return storage.Hash("vic", "aigua", i) }
	for _, m := range []string{"", "vic"} {
		got := same[storage.IncidentState](t, "IncidentsAt", ss, storage.IncidentsAt(T, 30*day, counted, m), false)
		want := []storage.IncidentState{{Key: key("i3"), ServiceHash: aigua, Opened: T.Add(-2 * time.Hour).UnixNano(), Target: 3600, PriorityRank: 1}}
		if !reflect.DeepEqual(got, want) || got[0].Priority() != "critical" {
			t.Errorf("incidents at T in %q: %+v, want %+v", m, got, want)
		}
	}
	later := same[storage.IncidentState](t, "IncidentsAt", ss, storage.IncidentsAt(T.Add(2*time.Hour), 30*day, counted, ""), false)
	if len(later) != 3 {
		t.Fatalf("incidents at T+2h: %+v; want i1, i2 and i3", later)
	}
	ids := same[storage.IncidentID](t, "IncidentIDs", ss, storage.IncidentIDs(later), false)
	names := map[uint64]string{}
	for _, x := range ids {
		names[x.Key] = x.Incident
	}
	if names[key("i1")] != "i1" || names[key("i3")] != "i3" || names[storage.Hash("vic", "llum", "i2")] != "i2" || len(names) != 3 {
		t.Errorf("incident ids %v", ids)
	}
	same[storage.IncidentState](t, "IncidentsAt", ss, storage.IncidentsAt(T, 30*day, counted, "inventat"), true)
}

// compareLongOpenIncidents stores, in one municipality, incidents opened
// 400 days before T: one its provider never resolved, one it resolved the
// next day, one resolved only by the council (which counts too), one
// resolved by an intruder and one resolved at T + 1 h (read at T, not
// resolved before it), each event in an insert of its own. On both
// engines, before and after the candidate tables are merged (the merge
// drops the balanced rows), the incidents the rules look at at T are the
// three not resolved before T by a counted publisher, and the table of
// balances keeps only the rows of those whose opener did not resolve them.
func compareLongOpenIncidents(t *testing.T, ss []side) {
	t.Helper()
	const m = "olot"
	opened := T.Add(-400 * day)
	open := func(i string) *contract.Event {
		return storagetest.Event(m, "p", opened, &contract.IncidentOpened{Service: "s", Incident: i, Priority: "high", ResolutionTargetSeconds: 3600})
	}
	resolve := func(publisher, i string, at time.Time) *contract.Event {
		return storagetest.Event(m, publisher, at, &contract.IncidentResolved{Service: "s", Incident: i})
	}
	evs := []*contract.Event{open("never"), open("next-day"), resolve("p", "next-day", opened.Add(day)),
		open("by-council"), resolve(contract.Council, "by-council", opened.Add(day)),
		open("by-intruder"), resolve("intrus", "by-intruder", opened.Add(day)),
		open("after-t"), resolve("p", "after-t", T.Add(time.Hour))}
	counted := []uint64{storage.ServiceHash(storage.Series{Municipality: m, Service: "s", Publisher: "p"}),
		storage.ServiceHash(storage.Series{Municipality: m, Service: "s", Publisher: contract.Council})}
	for _, s := range ss {
		for _, e := range evs {
			storagetest.Store(t, s.e, e)
		}
	}
	key := func(i string) uint64 { return storage.Hash(m, "s", i) }
	want := map[uint64]bool{key("never"): true, key("by-intruder"): true, key("after-t"): true}
	balances := storage.Query{SQL: "SELECT key, sseries, toInt64(sum(balance)) AS n FROM " + storage.IncidentOpen +
		" WHERE mseries = ? GROUP BY key, sseries HAVING n != 0", Args: []any{storage.MunicipalityHash(m)}}
	for _, merged := range []bool{false, true} {
		if merged {
			for _, table := range []string{storage.IncidentOpen, storage.IncidentTimes, storage.IncidentKeys} {
				exec2(t, "OPTIMIZE", ss, storage.Query{SQL: "OPTIMIZE TABLE " + table + " FINAL"})
			}
		}
		got := same[storage.IncidentState](t, "IncidentsAt", ss, storage.IncidentsAt(T, 30*day, counted, ""), false)
		found := map[uint64]bool{}
		for _, x := range got {
			if x.Opened == opened.UnixNano() {
				found[x.Key] = true
			}
		}
		if !reflect.DeepEqual(found, want) {
			t.Errorf("merged %v: incidents opened 400 days before T found %v; want never, by-intruder and after-t %v", merged, found, want)
		}
		rows := same[struct {
			Key     uint64 `ch:"key"`
			Series  uint64 `ch:"sseries"`
			Balance int64  `ch:"n"`
		}](t, "incident_open balances", ss, balances, false)
		// never: p +1; by-council: p +1, council -1; by-intruder: p +1,
		// intrus -1; next-day and after-t: p 0.
		if len(rows) != 5 {
			t.Errorf("merged %v: balances %+v; want 5 (publisher, incident) not balanced", merged, rows)
		}
		if merged {
			var n []storage.Count
			for _, s := range ss {
				if err := s.e.Select(context.Background(), &n, storage.Query{SQL: "SELECT count() AS n FROM " + storage.IncidentOpen +
					" WHERE mseries = ? AND key IN (?, ?)", Args: []any{storage.MunicipalityHash(m), key("next-day"), key("after-t")}}); err != nil {
					t.Fatal(err)
				}
				if n[0].N != 0 {
					t.Errorf("%s: %d rows left in %s for incidents their opener resolved; want 0 after a merge", s.name, n[0].N, storage.IncidentOpen)
				}
			}
		}
	}
}
