package reader_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// TestCatalogueReadAgainWhenItChanges: one reader keeps the catalogue
// between evaluations, and sees a new registration, a copy of one stored
// by racing replicas (the first copy stands) and its merge at once, and a
// registration once T has passed it.
func TestCatalogueReadAgainWhenItChanges(t *testing.T) {
	ctx := context.Background()
	db := database(t)
	old := T.Add(-200 * day)
	r := newReader(t, db)
	servicesAt := func(at time.Time, m string) []string {
		t.Helper()
		in, err := r.Read(ctx, at, w, m)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range in.Municipalities["vic"].Input.Services {
			out = append(out, s.ID+"/"+s.Provider)
		}
		return out
	}
	services := func(m string) []string { t.Helper(); return servicesAt(T, m) }
	storagetest.Store(t, db, register("vic", "a", contract.Council, time.Hour, old))
	if got := services(""); !slices.Equal(got, []string{"a/council"}) {
		t.Fatalf("services %v", got)
	}
	b := register("vic", "b", "p1", time.Hour, old)
	storagetest.Store(t, db, b)
	if got := services(""); !slices.Equal(got, []string{"a/council", "b/p1"}) {
		t.Errorf("after a registration: %v", got)
	}
	copyOfB := *b
	copyOfB.Data = &contract.ServiceRegistered{Service: "b", Name: "b", Area: "area-b", Delivery: contract.DeliveryConcession, Provider: "p2", ReportingIntervalSeconds: 3600}
	storagetest.Store(t, db, &copyOfB)
	if got := services("vic"); !slices.Equal(got, []string{"a/council", "b/p1"}) {
		t.Errorf("after a copy: %v; the first copy stands", got)
	}
	if err := db.Exec(ctx, storage.Query{SQL: "OPTIMIZE TABLE " + storage.Catalog + " FINAL"}); err != nil {
		t.Fatal(err)
	}
	if got := services(""); !slices.Equal(got, []string{"a/council", "b/p1"}) {
		t.Errorf("after the merge: %v", got)
	}
	// A registration after T: in force from its instant on, whatever T
	// the reader saw before.
	storagetest.Store(t, db, register("vic", "c", contract.Council, time.Hour, T.Add(time.Hour)))
	for _, c := range []struct {
		at   time.Time
		want []string
	}{{T, []string{"a/council", "b/p1"}}, {T.Add(2 * time.Hour), []string{"a/council", "b/p1", "c/council"}}, {T, []string{"a/council", "b/p1"}}} {
		if got := servicesAt(c.at, ""); !slices.Equal(got, c.want) {
			t.Errorf("at %s: %v, want %v", c.at, got, c.want)
		}
	}
}

// TestConcurrentReads: evaluations of every municipality at two instants
// and of one municipality run at once on one reader, sharing what it
// keeps, and each gets what it would get alone (run with -race).
func TestConcurrentReads(t *testing.T) {
	ctx := context.Background()
	db := database(t)
	old := T.Add(-200 * day)
	storagetest.Store(t, db, register("vic", "a", "p", time.Hour, old), defineSLA("vic", "a", "k", old),
		measure("vic", "p", "a", "k", T.Add(-time.Hour), 3), register("vic", "b", contract.Council, time.Hour, T.Add(30*time.Minute)))
	r := newReader(t, db)
	alone := map[time.Time]int{T: 1, T.Add(time.Hour): 2}
	errs := make(chan error, 12)
	for i := range 12 {
		go func() {
			at, m := T, ""
			switch i % 3 {
			case 1:
				at = T.Add(time.Hour)
			case 2:
				m = "vic"
			}
			in, err := r.Read(ctx, at, w, m)
			if err == nil && len(in.Municipalities["vic"].Input.Services) != alone[at] {
				err = fmt.Errorf("at %s: %d services, want %d", at, len(in.Municipalities["vic"].Input.Services), alone[at])
			}
			errs <- err
		}()
	}
	for range 12 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// counting is an engine that records the whole-day counts it is asked for:
// how many queries, and how many series they name (0: every series).
type counting struct {
	storage.Engine
	mu     sync.Mutex
	counts []int
}

func (e *counting) Select(ctx context.Context, dest any, q storage.Query) error {
	// Only the whole days' counts read the latest whole day (and the shift
	// of kept counts to another day, which is not a count of every day).
	if strings.Contains(q.SQL, "SELECT max(day), series") && !strings.Contains(q.SQL, "shifted_samples") {
		named := 0
		for _, x := range q.External {
			if x.Name == "wanted_series" {
				named = len(x.Rows)
			}
		}
		e.mu.Lock()
		e.counts = append(e.counts, named)
		e.mu.Unlock()
	}
	return e.Engine.Select(ctx, dest, q)
}

func (e *counting) take() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.counts
	e.counts = nil
	return out
}

// TestWholeDaysKeptAcrossReaders: the whole days' counts one reader
// computes are taken by a reader that starts after it, which counts again
// only those of an intruder's series (never kept: anyone can add series);
// a late measurement on a whole day, or a target redefined, makes only the
// series concerned counted again; rows that do not hold (other samples)
// are never taken; the spans of days gone are dropped.
func TestWholeDaysKeptAcrossReaders(t *testing.T) {
	ctx := context.Background()
	db := database(t)
	old := T.Add(-200 * day)
	evs := []*contract.Event{register("vic", "a", "p", time.Hour, old), defineSLA("vic", "a", "k", old),
		register("vic", "b", contract.Council, time.Hour, old), defineSLA("vic", "b", "k", old)}
	for d := range 50 {
		at := T.Add(-time.Duration(d)*day - time.Hour)
		evs = append(evs, measure("vic", "p", "a", "k", at, float64(d%4)), measure("vic", contract.Council, "b", "k", at, float64(d%3)),
			measure("vic", "intrus", "a", "k", at, 9))
	}
	storagetest.Store(t, db, evs...)
	first := &counting{Engine: db}
	sameEvaluation(t, db, newReader(t, first), T, w, "")
	if got := first.take(); !slices.Equal(got, []int{0}) {
		t.Fatalf("first reader counted whole days %v, want once, every series", got)
	}
	// Only the series that count are kept: a and b, not the intruder's.
	var kept []storage.Count
	if err := db.Select(ctx, &kept, storage.Query{SQL: "SELECT uniqExact(series) AS n FROM " + storage.WholeDayCounts}); err != nil {
		t.Fatal(err)
	}
	if len(kept) != 1 || kept[0].N != 2 {
		t.Errorf("kept series %+v, want 2", kept)
	}
	next := &counting{Engine: db}
	sameEvaluation(t, db, newReader(t, next), T, w, "")
	if got := next.take(); !slices.Equal(got, []int{1}) {
		t.Errorf("a reader started after the first counted whole days %v; it should take the kept counts, and count the intruder's series", got)
	}
	// A late measurement on a whole day of series a: a new reader counts
	// that series again (and the intruder's), and keeps the counts of b.
	storagetest.Store(t, db, measure("vic", "p", "a", "k", T.Add(-20*day), 3))
	late := &counting{Engine: db}
	sameEvaluation(t, db, newReader(t, late), T, w, "")
	if got := late.take(); !slices.Equal(got, []int{2}) {
		t.Errorf("after a late measurement: whole days counted %v, want two series", got)
	}
	// The target of b redefined: b is counted again.
	storagetest.Store(t, db, ev("vic", contract.Council, T.Add(-2*day), &contract.SLADefined{Service: "b", KPI: "k",
		Direction: contract.LowerIsBetter, Target: 1, Objective: 0.5}))
	redefined := &counting{Engine: db}
	sameEvaluation(t, db, newReader(t, redefined), T, w, "")
	if got := redefined.take(); !slices.Equal(got, []int{2}) {
		t.Errorf("after a redefined target: whole days counted %v, want two series", got)
	}
	// Rows that do not hold for the samples stored now are never taken,
	// whatever they say; two rows that hold with different counts make
	// the series counted again.
	for _, samples := range []string{"samples + 1000000", "samples"} {
		if err := db.Exec(ctx, storage.Query{SQL: "INSERT INTO " + storage.WholeDayCounts +
			" SELECT end_day, span, series, " + samples + ", lower, target, service_hash, municipality_hash, 999, 999, 999, 999, last_ns, " +
			"short_samples_0, short_samples_1, short_samples_2, short_samples_3, short_meeting_0, short_meeting_1, short_meeting_2, short_meeting_3 FROM " +
			storage.WholeDayCounts}); err != nil {
			t.Fatal(err)
		}
		tampered := &counting{Engine: db}
		sameEvaluation(t, db, newReader(t, tampered), T, w, "")
		if got, want := tampered.take(), map[string][]int{"samples": {0}, "samples + 1000000": {1}}[samples]; !slices.Equal(got, want) {
			t.Errorf("with rows of %s: whole days counted %v, want %v", samples, got, want)
		}
	}
	// Days later, the spans that ended before the day before are dropped.
	ends := func() []string {
		t.Helper()
		var parts []storage.Partition
		if err := db.Select(ctx, &parts, storage.KeptPartitions()); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range parts {
			out = append(out, p.Name)
		}
		slices.Sort(out)
		return out
	}
	before := ends()
	if len(before) != 1 {
		t.Fatalf("kept partitions %v, want one", before)
	}
	sameEvaluation(t, db, newReader(t, db), T.Add(day), w, "")
	sameEvaluation(t, db, newReader(t, db), T.Add(2*day), w, "")
	if after := ends(); len(after) != 2 || slices.Contains(after, before[0]) {
		t.Errorf("kept partitions %v after two days, from %v: want the last two", after, before)
	}
}

// TestWholeDaysShiftedAcrossDays: when T moves to another day, a running
// reader counts only the days the windows gained and lost and shifts the
// counts it kept, for every series whose samples on the last span's days
// did not change and whose target is the same; a late measurement, a
// redefined target is counted again, as is, now and then, a series that
// stopped reporting. A reader that starts on a day no evaluator has
// evaluated yet shifts the counts kept the day before. The shifted counts are written, for a reader that
// starts later that day.
func TestWholeDaysShiftedAcrossDays(t *testing.T) {
	db := database(t)
	old := T.Add(-200 * day)
	evs := []*contract.Event{register("vic", "a", "p", time.Hour, old), defineSLA("vic", "a", "k", old),
		register("vic", "b", contract.Council, time.Hour, old), defineSLA("vic", "b", "k", old),
		register("vic", "c", contract.Council, time.Hour, old), defineSLA("vic", "c", "k", old)}
	for d := -50; d < 70; d++ { // a, b and the intruder report every day until T + 50 d
		at := T.Add(-time.Duration(d)*day - time.Hour)
		evs = append(evs, measure("vic", "p", "a", "k", at, float64(d%4)), measure("vic", contract.Council, "b", "k", at, float64(d%3)),
			measure("vic", "intrus", "a", "k", at, 9))
		if d >= 10 { // c stopped reporting 10 days before T: T - W passes over its latest whole day some day
			evs = append(evs, measure("vic", contract.Council, "c", "k", at.Add(-time.Duration(d)*time.Minute), float64(d%5)))
		}
	}
	storagetest.Store(t, db, evs...)
	counted := &counting{Engine: db}
	roll := newReader(t, counted)
	at := T.Add(-2 * day)
	sameEvaluation(t, db, roll, at, w, "")
	if got := counted.take(); !slices.Equal(got, []int{0}) {
		t.Fatalf("first evaluation counted whole days %v, want once, every series", got)
	}
	for step, change := range []struct {
		name  string
		store []*contract.Event
		want  []int // series counted again over every whole day
	}{
		{"nothing new", nil, nil},
		{"a late measurement of a", []*contract.Event{measure("vic", "p", "a", "k", T.Add(-20*day-time.Minute), 3)}, []int{1}},
		{"b's target redefined", []*contract.Event{ev("vic", contract.Council, T.Add(-3*day), &contract.SLADefined{Service: "b", KPI: "k",
			Direction: contract.LowerIsBetter, Target: 1, Objective: 0.5})}, []int{1}},
		{"nothing new, again", nil, nil},
	} {
		storagetest.Store(t, db, change.store...)
		at = at.Add(day + time.Duration(step)*time.Hour)
		sameEvaluation(t, db, roll, at, w, "")
		got := counted.take()
		if !slices.Equal(got, change.want) {
			t.Errorf("%s, at %s: whole days counted %v, want %v", change.name, at, got, change.want)
		}
		// The shifted counts were written: a reader that starts now counts
		// only the intruder's series, never kept.
		started := &counting{Engine: db}
		sameEvaluation(t, db, newReader(t, started), at, w, "")
		if got := started.take(); !slices.Equal(got, []int{1}) {
			t.Errorf("%s: a reader started at %s counted whole days %v, want the intruder's series only", change.name, at, got)
		}
	}
	// A reader that starts on a day no evaluator has evaluated yet shifts
	// the counts kept the day before at the same time: it counts only the
	// intruder's series (never kept). With a late measurement on one of
	// the day before's whole days, that series is counted too.
	for _, late := range []*contract.Event{nil, measure("vic", contract.Council, "b", "k", at.Add(-15*day-time.Minute), 2)} {
		if late != nil {
			storagetest.Store(t, db, late)
		}
		at = at.Add(day)
		started := &counting{Engine: db}
		sameEvaluation(t, db, newReader(t, started), at, w, "")
		if got, want := started.take(), map[bool][]int{true: {1}, false: {2}}[late == nil]; !slices.Equal(got, want) {
			t.Errorf("a reader started on a new day (late measurement: %v) counted whole days %v, want %v", late != nil, got, want)
		}
	}
	// Day after day, until c's last day has left the span: the readings
	// stay equal, and only c is counted again, when its latest whole day
	// stops being whole (which day holds its latest instant then is not
	// known from the days gained and lost).
	recounted := 0
	for range 45 {
		at = at.Add(day)
		sameEvaluation(t, db, roll, at, w, "")
		for _, n := range counted.take() {
			if recounted++; n != 1 {
				t.Errorf("at %s: %d series counted again, want c alone", at, n)
			}
		}
	}
	if recounted == 0 || recounted > 5 {
		t.Errorf("c counted again on %d days of 45", recounted)
	}
}
