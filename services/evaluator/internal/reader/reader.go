// Package reader turns what ClickHouse holds into the plain inputs of the
// maturity rules: the catalogue and SLAs in force at T, counted
// measurements aggregated per window, and counted incidents. Heavy
// aggregation runs in SQL (the queries of the storage package); the rules
// of who counts are applied here, in Go (attribution.go, tally.go), so they
// are tested without a database. It is the engine's Source.
package reader

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/storage"
)

// Reader reads one database.
type Reader struct {
	db storage.Engine
}

// New returns a reader on db.
func New(db storage.Engine) *Reader { return &Reader{db: db} }

// DropLeftovers drops the SLA target tables an evaluator that stopped in the
// middle of an evaluation left behind. Run it at start.
func (r *Reader) DropLeftovers(ctx context.Context) error {
	var tables []storage.TableName
	if err := r.db.Select(ctx, &tables, storage.LeftoverTargets()); err != nil {
		return fmt.Errorf("list leftover tables: %w", err)
	}
	for _, t := range tables {
		if err := r.db.Exec(ctx, storage.DropTable(t.Name)); err != nil {
			return fmt.Errorf("drop leftover table %s: %w", t.Name, err)
		}
	}
	return nil
}

// Read returns the inputs of every known municipality at T (only of the
// named one when municipality is not empty), for windows of length w.
func (r *Reader) Read(ctx context.Context, at time.Time, w time.Duration, municipality string) (*engine.Inputs, error) {
	var rows []storage.CatalogueRow
	if err := r.db.Select(ctx, &rows, storage.CatalogueUpTo(at, municipality)); err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	cat := BuildCatalogue(rows, at)
	out := &engine.Inputs{Municipalities: map[string]*engine.Input{}}
	if municipality != "" && !cat.Known[municipality] {
		return out, nil
	}
	t, err := r.measurements(ctx, at, w, municipality, cat)
	if err != nil {
		return nil, err
	}
	var incs []storage.IncidentRow
	if err := r.db.Select(ctx, &incs, storage.IncidentsUpTo(at, municipality)); err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	incidents := CountedIncidents(incs, cat, at)
	for m := range cat.Known {
		x := &engine.Input{Input: maturity.Input{Municipality: m, At: at}, Short: map[maturity.SLAKey]map[string]maturity.WindowStats{},
			Unattributed: t.Unattributed[m]}
		in := &x.Input
		for id, s := range cat.Services[m] {
			s.MeasurementsC = t.CountC[m][id]
			s.LastMeasurement = t.Last[m][id]
			in.Services = append(in.Services, *s)
		}
		sort.Slice(in.Services, func(i, j int) bool { return in.Services[i].ID < in.Services[j].ID })
		for k, s := range cat.SLAs[m] {
			st := t.SLAs[m][k]
			s.C, s.P = st.C, st.P
			in.SLAs = append(in.SLAs, *s)
			if len(st.Short) > 0 {
				x.Short[k] = st.Short
			}
		}
		sort.Slice(in.SLAs, func(i, j int) bool {
			a, b := in.SLAs[i], in.SLAs[j]
			return a.Service < b.Service || a.Service == b.Service && a.KPI < b.KPI
		})
		in.Incidents = incidents[m]
		out.Municipalities[m] = x
	}
	if municipality == "" {
		out.UnknownMeasurements = t.Unknown
	}
	return out, nil
}

// measurements aggregates every series of measurements: one pass over the
// last 2W for samples in C and P and the latest instant, one over the last
// days for the short windows; each counts how many samples meet the target
// of the SLA in force at T (looked up with joinGet in a Join table filled
// for this evaluation). Who counts is decided in Go, by the Tally.
func (r *Reader) measurements(ctx context.Context, at time.Time, w time.Duration, municipality string, cat *Catalogue) (*Tally, error) {
	t := NewTally(cat)
	table := storage.NewTargetTable()
	if err := r.db.Exec(ctx, storage.CreateTargets(table)); err != nil {
		return nil, fmt.Errorf("create SLA targets: %w", err)
	}
	// Dropped whatever fails next; a process stopped before this runs
	// leaves the table to DropLeftovers.
	defer r.db.Exec(context.WithoutCancel(ctx), storage.DropTable(table))
	if tg := targets(cat); len(tg) > 0 {
		if err := r.db.Exec(ctx, storage.FillTargets(table, tg)); err != nil {
			return nil, fmt.Errorf("fill SLA targets: %w", err)
		}
	}
	var pending []storage.Count
	if err := r.db.Select(ctx, &pending, storage.PendingDuplicates()); err != nil {
		return nil, fmt.Errorf("read duplicates: %w", err)
	}
	final := len(pending) == 1 && pending[0].N > 0
	slas, services := countedSeries(cat)
	var names []storage.HashName
	if err := r.db.Select(ctx, &names, storage.HashNames(slas, services, known(cat))); err != nil {
		return nil, fmt.Errorf("hash names: %w", err)
	}
	h := NewHashes(names)
	var groups []storage.SeriesCounts
	if err := r.db.Select(ctx, &groups, storage.CountSeries(table, at, w, municipality, final)); err != nil {
		return nil, fmt.Errorf("read measurements: %w", err)
	}
	t.AddSeries(groups, h)
	windows := make([]storage.Window, len(maturity.ShortWindows))
	labels := make([]string, len(maturity.ShortWindows))
	for i, sw := range maturity.ShortWindows {
		windows[i], labels[i] = storage.Window{Label: sw.Label, D: sw.D}, sw.Label
	}
	var short []storage.ShortCounts
	if err := r.db.Select(ctx, &short, storage.CountShortWindows(table, at, windows, municipality, final)); err != nil {
		return nil, fmt.Errorf("read short windows: %w", err)
	}
	t.AddShort(short, labels, h)
	if silent := t.silent(cat); len(silent) > 0 {
		var older []storage.LastMeasurement
		if err := r.db.Select(ctx, &older, storage.LastBefore(at.Add(-2*w), silent)); err != nil {
			return nil, fmt.Errorf("read older measurements: %w", err)
		}
		t.AddOlder(older)
	}
	return t, nil
}

func known(cat *Catalogue) []string {
	out := make([]string, 0, len(cat.Known))
	for m := range cat.Known {
		out = append(out, m)
	}
	return out
}
