package reader_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/simulator/sim"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// The simulator's designed municipalities are checked by the real
// evaluator: their generated history is stored in ClickHouse and read and
// judged by the reader and rules the service runs, with the defaults.

var designStarts = []time.Time{
	time.Date(2026, 3, 15, 10, 17, 0, 0, time.UTC),
	time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC),
	time.Date(2026, 11, 20, 18, 45, 30, 0, time.UTC),
}

// overlaps reports whether a dip episode touches [from, to).
func overlaps(d *sim.Dip, from, to time.Time) bool {
	for t := from; t.Before(to); t = t.Add(15 * time.Minute) {
		if d.In(t) {
			return true
		}
	}
	return false
}

// designed stores the history of g in a fresh database and returns a
// function that assesses a municipality at an instant.
func designed(t *testing.T, g *sim.Generator) func(m string, at time.Time) maturity.Assessment {
	t.Helper()
	db := database(t)
	storagetest.Store(t, db, g.History()...)
	cfg := maturity.DefaultConfig()
	r := newReader(t, db)
	return func(m string, at time.Time) maturity.Assessment {
		t.Helper()
		in, err := r.Read(context.Background(), at, cfg.Window, m)
		if err != nil {
			t.Fatal(err)
		}
		x, ok := in.Municipalities[m]
		if !ok {
			t.Fatalf("%s is not known at %s", m, at)
		}
		return maturity.Evaluate(cfg, x.Input)
	}
}

func failing(a maturity.Assessment) []string {
	var out []string
	for _, c := range a.Criteria {
		if !c.Passed {
			out = append(out, c.ID)
		}
	}
	return out
}

// TestDesignedLevels evaluates every designed municipality at the end of a
// default backfill, for several start instants and seeds, and checks the
// designed level and the criteria designed to stop it there.
func TestDesignedLevels(t *testing.T) {
	window := maturity.DefaultConfig().Window
	for i, start := range designStarts {
		g, err := sim.New(sim.Options{Seed: int64(1 + i), Start: start})
		if err != nil {
			t.Fatal(err)
		}
		assess := designed(t, g)
		for _, m := range g.Municipalities() {
			a := assess(m.ID, start)
			fails := failing(a)
			t.Logf("%s %s: level %d, failing %v", start.Format(time.DateOnly), m.ID, a.Level, fails)
			want, designedFails := m.Level, m.Fails
			if m.Flaps {
				c := overlaps(sim.RoadworksDip, start.Add(-window), start)
				p := overlaps(sim.RoadworksDip, start.Add(-2*window), start.Add(-window))
				switch {
				case c && p:
					if a.Level != 4 && a.Level != 5 {
						t.Errorf("%s at %s: level %d, want 4 or 5", m.ID, start, a.Level)
					}
					continue
				case c:
					want, designedFails = 4, m.DipFails
				}
			}
			if a.Level != want {
				t.Errorf("%s at %s: level %d, designed %d (failing %v)", m.ID, start, a.Level, want, fails)
			}
			for _, id := range designedFails {
				if !slices.Contains(fails, id) {
					t.Errorf("%s at %s: criterion %s passes, designed to fail", m.ID, start, id)
				}
			}
		}
	}
}

// TestFlappingMunicipality sweeps the flapping municipality day by day and
// checks it moves between Gestionat and Optimitzat exactly as the
// roadworks dips say.
func TestFlappingMunicipality(t *testing.T) {
	window := maturity.DefaultConfig().Window
	start := designStarts[2]
	var gr sim.Municipality
	for _, m := range sim.Designed() {
		if m.Flaps {
			gr = m
		}
	}
	g, err := sim.New(sim.Options{Seed: 1, Start: start, Backfill: 150 * sim.Day, Municipalities: []sim.Municipality{gr}})
	if err != nil {
		t.Fatal(err)
	}
	assess := designed(t, g)
	levels := map[int]int{}
	for T := start.Add(-69 * sim.Day); !T.After(start); T = T.Add(sim.Day) {
		a := assess(gr.ID, T)
		levels[a.Level]++
		c := overlaps(sim.RoadworksDip, T.Add(-window), T)
		p := overlaps(sim.RoadworksDip, T.Add(-2*window), T.Add(-window))
		switch {
		case !c && a.Level != 5:
			t.Errorf("%s: level %d with no dip in C, want 5 (failing %v)", T, a.Level, failing(a))
		case c && !p && a.Level != 4:
			t.Errorf("%s: level %d with a dip in C, want 4 (failing %v)", T, a.Level, failing(a))
		case a.Level != 4 && a.Level != 5:
			t.Errorf("%s: level %d, want 4 or 5", T, a.Level)
		}
	}
	if levels[4] == 0 || levels[5] == 0 {
		t.Errorf("levels over the sweep %v: want both 4 and 5", levels)
	}
	// Right after a whole episode, both designed criteria fail.
	T := sim.RoadworksDip.LastStart(start.Add(-5 * sim.Day)).Add(sim.RoadworksDip.Length + sim.Day)
	fails := failing(assess(gr.ID, T))
	for _, id := range gr.DipFails {
		if !slices.Contains(fails, id) {
			t.Errorf("%s, a day after an episode: %s passes", T, id)
		}
	}
}
