package reader_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/evaluator/internal/reader"
	"github.com/assoliment/assoliment/services/simulator/sim"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// The rollups must give exactly what the event tables give. These tests
// store random histories (redefined targets and directions, retirements,
// providers replaced, late events, identities stored twice, events on
// every window edge and midnight, incidents re-opened, resolved early, by
// intruders, at T) and the simulator's designed history, and compare the
// evaluation read from the rollups with the one read from the event
// tables alone (reader.Raw), input by input and criterion by criterion,
// at instants and window lengths that cut days anywhere.

// randomHistory is a random but reproducible history around T.
type randomHistory struct {
	rng     *rand.Rand
	evs     []*contract.Event
	late    []*contract.Event // stored after the rest, in separate inserts
	twice   []*contract.Event // stored a second time, as racing replicas would
	changed []*contract.Event // stored a second time with another value
}

const (
	randMunicipalities = 3
	randServices       = 4
)

var providers = []string{"p0", "p1", "p2"}

// edges are instants every window of the tests cuts at, each also 1 ns
// before and after.
func edges(at time.Time) []time.Time {
	var out []time.Time
	for _, d := range []time.Duration{0, time.Hour, 2 * time.Hour, 6 * time.Hour, day, 3 * day, 7*day + time.Hour, 14*day + 2*time.Hour,
		30 * day, 60 * day} {
		e := at.Add(-d)
		out = append(out, e, e.Add(-ns), e.Add(ns))
	}
	for m := at.Truncate(day).Add(day); m.After(at.Add(-65 * day)); m = m.Add(-day) {
		out = append(out, m, m.Add(-ns))
	}
	return out
}

func (h *randomHistory) instant(at time.Time) time.Time {
	if h.rng.IntN(3) == 0 {
		e := edges(at)
		return e[h.rng.IntN(len(e))]
	}
	return at.Add(-time.Duration(h.rng.Int64N(int64(66*day))) + time.Duration(h.rng.Int64N(int64(2*time.Hour))))
}

func newRandomHistory(seed uint64, at time.Time) *randomHistory {
	h := &randomHistory{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	old := at.Add(-200 * day)
	add := func(e *contract.Event) { h.evs = append(h.evs, e) }
	for mi := range randMunicipalities {
		m := fmt.Sprintf("m%d", mi)
		for si := range randServices {
			s := fmt.Sprintf("s%d", si)
			provider := contract.Council
			if si%2 == 0 {
				provider = providers[h.rng.IntN(len(providers))]
			}
			add(register(m, s, provider, time.Duration(1+h.rng.IntN(4))*time.Hour, old))
			switch h.rng.IntN(4) {
			case 0: // another provider from some instant on
				add(register(m, s, providers[h.rng.IntN(len(providers))], time.Hour, h.instant(at)))
			case 1: // retired, maybe registered again
				add(ev(m, contract.Council, h.instant(at), &contract.ServiceRetired{Service: s}))
				if h.rng.IntN(2) == 0 {
					add(register(m, s, provider, time.Hour, h.instant(at)))
				}
			}
			for k := range 2 {
				kpi := fmt.Sprintf("k%d", k)
				add(ev(m, contract.Council, old, &contract.SLADefined{Service: s, KPI: kpi, Direction: contract.HigherIsBetter, Target: 5, Objective: 0.9}))
				for range h.rng.IntN(3) { // redefined: another target or direction, anywhere
					dir := contract.HigherIsBetter
					if h.rng.IntN(2) == 0 {
						dir = contract.LowerIsBetter
					}
					add(ev(m, contract.Council, h.instant(at), &contract.SLADefined{Service: s, KPI: kpi, Direction: dir,
						Target: float64(3 + h.rng.IntN(5)), Objective: 0.5 + h.rng.Float64()/2}))
				}
			}
			for k := range 3 { // k2 has no SLA
				kpi := fmt.Sprintf("k%d", k)
				for _, p := range []string{provider, contract.Council, providers[h.rng.IntN(len(providers))], "intrus"} {
					for range 10 + h.rng.IntN(30) {
						v := float64(h.rng.IntN(10)) // integers: values equal to targets too
						if h.rng.IntN(4) == 0 {
							v += h.rng.Float64()
						}
						// A few copies: every series of a copy is read from
						// the event table, the others from the rollups.
						e := measure(m, p, s, kpi, h.instant(at), v)
						switch r := h.rng.IntN(400); {
						case r < 20:
							h.late = append(h.late, e)
						case r == 20:
							add(e)
							h.twice = append(h.twice, e)
						case r == 21:
							add(e)
							h.changed = append(h.changed, e)
						default:
							add(e)
						}
					}
				}
			}
			for i := range 6 {
				id := fmt.Sprintf("i%d", i)
				for range 1 + h.rng.IntN(3) {
					p := []string{provider, contract.Council, "intrus", providers[h.rng.IntN(len(providers))]}[h.rng.IntN(4)]
					svc := s
					if h.rng.IntN(5) == 0 { // naming another service: another incident
						svc = fmt.Sprintf("s%d", h.rng.IntN(randServices))
					}
					when := h.instant(at)
					if h.rng.IntN(6) == 0 {
						when = old.Add(time.Duration(h.rng.IntN(100)) * day) // long ago
					}
					target := []time.Duration{time.Minute, time.Hour, 4 * time.Hour, 30 * day, 2*time.Hour + 1}[h.rng.IntN(5)].Truncate(time.Second)
					o := h.opening(m, p, svc, id, when, target)
					add(o)
					if h.rng.IntN(8) == 0 { // the same opening stored twice
						h.twice = append(h.twice, o)
					}
					if h.rng.IntN(6) == 0 { // another opening at the same instant
						add(h.opening(m, p, svc, id, when, target+time.Duration(h.rng.IntN(2))*time.Hour))
					}
				}
				for range h.rng.IntN(3) {
					p := []string{provider, contract.Council, "intrus"}[h.rng.IntN(3)]
					add(resolve(m, p, s, id, h.instant(at)))
				}
			}
		}
	}
	// A municipality no council made known.
	for range 20 {
		add(measure("zz", "p0", "s0", "k0", h.instant(at), 1))
	}
	add(open("zz", "p0", "s0", "i", h.instant(at), time.Hour))
	h.rng.Shuffle(len(h.evs), func(i, j int) { h.evs[i], h.evs[j] = h.evs[j], h.evs[i] })
	return h
}

// opening is an incident.opened event with a random priority.
func (h *randomHistory) opening(m, publisher, service, id string, at time.Time, target time.Duration) *contract.Event {
	priority := []string{"low", "medium", "high", "critical"}[h.rng.IntN(4)]
	return ev(m, publisher, at, &contract.IncidentOpened{Service: service, Incident: id, Priority: priority,
		ResolutionTargetSeconds: int64(target / time.Second)})
}

// store writes the history as the ingest would over time: in batches, the
// late events after merges of the rollups, copies of some identities by
// racing replicas (recorded in duplicates; half of them merged and marked
// resolved, the others pending).
func (h *randomHistory) store(t *testing.T, db storage.Engine) {
	t.Helper()
	ctx := context.Background()
	for len(h.evs) > 0 {
		n := min(len(h.evs), 1+h.rng.IntN(400))
		storagetest.Store(t, db, h.evs[:n]...)
		h.evs = h.evs[n:]
	}
	for _, table := range []string{storage.MeasurementDays, storage.IncidentKeys, storage.IncidentOpen, storage.IncidentTimes} {
		if err := db.Exec(ctx, storage.Query{SQL: "OPTIMIZE TABLE " + table + " FINAL"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range h.late {
		storagetest.Store(t, db, e)
	}
	var ids []storage.Identity
	for _, e := range h.twice {
		storagetest.Store(t, db, e)
		ids = append(ids, storage.Identity{Municipality: e.Municipality, Publisher: e.Publisher, ID: e.ID})
	}
	for _, e := range h.changed {
		c := *e
		c.Data = &contract.KPIMeasured{Service: e.Data.(*contract.KPIMeasured).Service, KPI: e.Data.(*contract.KPIMeasured).KPI, Value: -100}
		storagetest.Store(t, db, &c)
		ids = append(ids, storage.Identity{Municipality: e.Municipality, Publisher: e.Publisher, ID: e.ID})
	}
	var rows [][]any
	now := time.Now()
	for i, id := range ids {
		rows = append(rows, storage.DuplicateRow(id, false, now))
		if i%2 == 1 {
			rows = append(rows, storage.DuplicateRow(id, true, now.Add(time.Second)))
		}
	}
	if err := db.Insert(ctx, storage.Duplicates, storage.DuplicateColumns, rows); err != nil {
		t.Fatal(err)
	}
}

// sameEvaluation reads the windows at T both ways, from the rollups with
// roll (which keeps what it can between reads), and compares the inputs
// and every municipality's assessment.
func sameEvaluation(t *testing.T, db storage.Engine, roll *reader.Reader, at time.Time, w time.Duration, municipality string) {
	t.Helper()
	ctx := context.Background()
	rollups, err := roll.Read(ctx, at, w, municipality)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := newReader(t, db, reader.Raw()).Read(ctx, at, w, municipality)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw.Municipalities) == 0 {
		t.Fatalf("at %s, W %s, %q: nothing to compare", at, w, municipality)
	}
	cfg := maturity.DefaultConfig()
	cfg.Window = w
	for _, m := range slices.Sorted(maps.Keys(raw.Municipalities)) {
		want, got := raw.Municipalities[m], rollups.Municipalities[m]
		if got == nil {
			t.Errorf("at %s, W %s: %s missing from the rollups' evaluation", at, w, m)
			continue
		}
		wa, ga := maturity.Evaluate(cfg, want.Input), maturity.Evaluate(cfg, got.Input)
		for i := range wa.Criteria {
			if !reflect.DeepEqual(wa.Criteria[i], ga.Criteria[i]) {
				t.Errorf("at %s, W %s, %s: criterion %s\nrollups: %+v\nraw:     %+v", at, w, m, wa.Criteria[i].ID, ga.Criteria[i], wa.Criteria[i])
			}
		}
		for _, part := range []struct {
			name      string
			raw, roll any
		}{
			{"services", want.Services, got.Services}, {"SLAs", want.SLAs, got.SLAs}, {"incidents", want.Incidents, got.Incidents},
			{"short windows", want.Short, got.Short}, {"unattributed", want.Unattributed, got.Unattributed},
		} {
			if !reflect.DeepEqual(part.raw, part.roll) {
				t.Errorf("at %s, W %s, %s: %s differ\nrollups: %+v\nraw:     %+v", at, w, m, part.name, part.roll, part.raw)
			}
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("at %s, W %s, %s: inputs differ", at, w, m)
		}
	}
	if len(rollups.Municipalities) != len(raw.Municipalities) || rollups.UnknownMeasurements != raw.UnknownMeasurements {
		t.Errorf("at %s, W %s: %d municipalities, %d unknown measurements; raw %d, %d", at, w,
			len(rollups.Municipalities), rollups.UnknownMeasurements, len(raw.Municipalities), raw.UnknownMeasurements)
	}
}

// TestRollupsEqualRaw compares both readings of random histories, with
// the rollups covering everything and covering only the days from a
// midnight inside the windows on (as after an upgrade), with one reader
// of the rollups that keeps what it can between evaluations (and shifts
// it when T moves to another day) and sees late events arrive, on whole
// days and on days a window edge cuts.
func TestRollupsEqualRaw(t *testing.T) {
	ctx := context.Background()
	instants := []time.Time{T, T.Truncate(day), T.Add(17*time.Minute + 3*time.Second + 1)}
	windows := []time.Duration{w, 7*day + time.Hour, 2 * time.Hour}
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			db := database(t)
			h := newRandomHistory(seed, T)
			h.store(t, db)
			roll := newReader(t, db)
			for _, cover := range []string{"everything", "from a midnight"} {
				if cover != "everything" {
					for _, q := range []string{"TRUNCATE TABLE " + storage.RollupCoverage,
						"INSERT INTO " + storage.RollupCoverage + " SELECT '" + storage.MeasurementDays + "', toDate('" +
							T.Add(-20*day).Format(time.DateOnly) + "'), now()"} {
						if err := db.Exec(ctx, storage.Query{SQL: q}); err != nil {
							t.Fatal(err)
						}
					}
				}
				for _, at := range instants {
					for _, w := range windows {
						sameEvaluation(t, db, roll, at, w, "")
					}
				}
				sameEvaluation(t, db, roll, T, w, "m1")
				// T moves to other days: the kept counts are shifted.
				for _, at := range []time.Time{T.Add(day + 5*time.Hour), T.Add(2*day + 7*time.Hour + 1), T.Add(-2 * day)} {
					sameEvaluation(t, db, roll, at, w, "")
				}
				// Late events on whole days and on edge days, between two
				// evaluations at the same instant.
				sameEvaluation(t, db, roll, T, w, "")
				var late []*contract.Event
				for i, e := range edges(T) {
					if i%4 == 0 {
						late = append(late, measure(fmt.Sprintf("m%d", i%randMunicipalities), contract.Council, "s1", "k0", e, float64(i%10)))
					}
				}
				late = append(late, measure("m0", contract.Council, "s1", "k1", T.Add(-10*day), 9), measure("m2", contract.Council, "s3", "k0", T.Add(-40*day), 1))
				storagetest.Store(t, db, late...)
				sameEvaluation(t, db, roll, T, w, "")
				// A reader that starts now takes the whole days' counts
				// that still hold, and no other.
				sameEvaluation(t, db, newReader(t, db), T, w, "")
				// An SLA redefined before T, between two evaluations: its
				// series are judged again, the others kept.
				storagetest.Store(t, db, ev("m1", contract.Council, T.Add(-5*day), &contract.SLADefined{Service: "s0", KPI: "k0",
					Direction: contract.LowerIsBetter, Target: 4, Objective: 0.8}))
				sameEvaluation(t, db, roll, T, w, "")
				sameEvaluation(t, db, newReader(t, db), T, w, "")
			}
			// Every copy merged away and marked resolved: measurements are
			// read without FINAL, the rollups still hold the copies.
			if err := db.Exec(ctx, storage.Query{SQL: "OPTIMIZE TABLE " + storage.Measurements + " FINAL"}); err != nil {
				t.Fatal(err)
			}
			if err := db.Exec(ctx, storage.Query{SQL: "INSERT INTO " + storage.Duplicates +
				" SELECT municipality, publisher, id, now(), 1, version + 1000000000000 FROM " + storage.Duplicates + " FINAL"}); err != nil {
				t.Fatal(err)
			}
			sameEvaluation(t, db, roll, T, w, "")
			sameEvaluation(t, db, newReader(t, db), T, w, "")
		})
	}
}

// TestRollupsEqualRawOnDesignedHistory compares both readings of the
// simulator's designed municipalities over their history.
func TestRollupsEqualRawOnDesignedHistory(t *testing.T) {
	start := time.Date(2026, 11, 20, 18, 45, 30, 0, time.UTC)
	g, err := sim.New(sim.Options{Seed: 7, Start: start})
	if err != nil {
		t.Fatal(err)
	}
	db := database(t)
	storagetest.Store(t, db, g.History()...)
	roll := newReader(t, db)
	for _, at := range []time.Time{start, start.Add(-13*day - 5*time.Hour - 7), start.Truncate(day), start} {
		sameEvaluation(t, db, roll, at, w, "")
	}
}
