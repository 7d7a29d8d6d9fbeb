// Package reader turns what ClickHouse holds into the plain inputs of the
// maturity rules: the catalogue and SLAs in force at T, counted
// measurements aggregated per window, and counted incidents. Heavy
// aggregation runs in SQL (the queries of the storage package); the rules
// of who counts are applied here, in Go (attribution.go, tally.go), so they
// are tested without a database. Between evaluations of every
// municipality it keeps what has not changed (kept.go). It is the engine's
// Source.
package reader

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/storage"
)

// Reader reads one database. It is safe for concurrent use.
type Reader struct {
	db  storage.Engine
	raw bool

	mu    sync.Mutex
	built *catalogueAt // the catalogue of every municipality at the last T

	wholeMu sync.Mutex
	whole   *wholeDays // the whole days of the last evaluation of every municipality
}

// Option changes how a Reader reads.
type Option func(*Reader)

// Raw reads every window from the event tables and never from the
// rollups: the reference the rollups are tested and measured against.
func Raw() Option { return func(r *Reader) { r.raw = true } }

// New returns a reader on db.
func New(db storage.Engine, opts ...Option) *Reader {
	r := &Reader{db: db}
	for _, o := range opts {
		o(r)
	}
	return r
}

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
	c, err := r.catalogueAt(ctx, at, municipality)
	if err != nil {
		return nil, err
	}
	cat, h := c.cat, c.h
	out := &engine.Inputs{Municipalities: map[string]*engine.Input{}}
	if municipality != "" && !cat.Known[municipality] {
		return out, nil
	}
	t, err := r.measurements(ctx, at, w, municipality, c)
	if err != nil {
		return nil, err
	}
	incidents, err := r.incidents(ctx, at, w, municipality, cat, h)
	if err != nil {
		return nil, err
	}
	for m := range cat.Known {
		x := &engine.Input{Input: maturity.Input{Municipality: m, At: at}, Short: map[maturity.SLAKey]map[string]maturity.WindowStats{},
			Unattributed: t.Unattributed[m]}
		in := &x.Input
		if n := len(cat.Services[m]); n > 0 {
			in.Services = make([]maturity.Service, 0, n)
		}
		if n := len(cat.SLAs[m]); n > 0 {
			in.SLAs = make([]maturity.SLA, 0, n)
		}
		for id, s := range cat.Services[m] { // copies: the catalogue may serve other evaluations
			svc := *s
			svc.MeasurementsC = t.CountC[m][id]
			svc.LastMeasurement = t.Last[m][id]
			in.Services = append(in.Services, svc)
		}
		sort.Slice(in.Services, func(i, j int) bool { return in.Services[i].ID < in.Services[j].ID })
		for k, s := range cat.SLAs[m] {
			st := t.SLAs[m][k]
			sla := *s
			sla.C, sla.P = st.C, st.P
			in.SLAs = append(in.SLAs, sla)
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

// measurements aggregates every series of measurements over the windows
// (P, C and the short windows) in one pass per source, counting how many
// samples meet the target of the SLA in force at T (looked up with joinGet
// in a Join table filled for this evaluation). Who counts is decided in
// Go, by the Tally.
func (r *Reader) measurements(ctx context.Context, at time.Time, w time.Duration, municipality string, c *catalogueAt) (*Tally, error) {
	cat, h := c.cat, c.h
	t := NewTally(cat)
	table := storage.NewTargetTable()
	if err := r.db.Exec(ctx, storage.CreateTargets(table)); err != nil {
		return nil, fmt.Errorf("create SLA targets: %w", err)
	}
	// Dropped whatever fails next; a process stopped before this runs
	// leaves the table to DropLeftovers.
	defer r.db.Exec(context.WithoutCancel(ctx), storage.DropTable(table))
	if len(c.targets.Rows) > 0 {
		if err := r.db.Exec(ctx, storage.FillTargets(table, c.targets)); err != nil {
			return nil, fmt.Errorf("fill SLA targets: %w", err)
		}
	}
	var pending []storage.Count
	if err := r.db.Select(ctx, &pending, storage.PendingDuplicates()); err != nil {
		return nil, fmt.Errorf("read duplicates: %w", err)
	}
	final := len(pending) == 1 && pending[0].N > 0
	windows := make([]storage.Window, len(maturity.ShortWindows))
	labels := make([]string, len(maturity.ShortWindows))
	for i, sw := range maturity.ShortWindows {
		windows[i], labels[i] = storage.Window{Label: sw.Label, D: sw.D}, sw.Label
	}
	span := storage.Span{Targets: table, At: at, W: w, Windows: windows, Municipality: municipality}
	span.From, span.To = storage.Oldest(at, w, windows), at
	queries, err := r.windowQueries(ctx, span, final, c, t, labels)
	if err != nil {
		return nil, err
	}
	for _, q := range queries {
		rows := make([]storage.SeriesCounts, 0, seriesHint(h))
		if err := r.db.Select(ctx, &rows, q); err != nil {
			return nil, fmt.Errorf("read measurements: %w", err)
		}
		t.AddSeries(rows, labels, h)
	}
	t.fold()
	if silent := t.silent(cat); len(silent) > 0 {
		var older []storage.LastMeasurement
		if err := r.db.Select(ctx, &older, storage.LastBefore(span.From, silent)); err != nil {
			return nil, fmt.Errorf("read older measurements: %w", err)
		}
		t.AddOlder(older)
	}
	return t, nil
}

// windowQueries splits the span into the queries that count it, whose
// counts add up, after adding to t the counts of the whole days it keeps
// (see wholeDays). The days the rollups cover are read from them, except the
// series of identities stored twice (the rollups added every copy), which
// are read from measurements like the days before the coverage;
// measurements are read with FINAL while an identity stored twice is not
// merged yet.
func (r *Reader) windowQueries(ctx context.Context, span storage.Span, final bool, c *catalogueAt, t *Tally, labels []string) ([]storage.Query, error) {
	if r.raw {
		return []storage.Query{storage.CountSeries(span, final, nil)}, nil
	}
	var cov []storage.Coverage
	if err := r.db.Select(ctx, &cov, storage.MeasurementCoverage()); err != nil {
		return nil, fmt.Errorf("read rollup coverage: %w", err)
	}
	cut := span.To
	if len(cov) == 1 {
		if from, ok := cov[0].From(); ok && from.Before(span.To) {
			cut = from
		}
	}
	if cut.Before(span.From) {
		cut = span.From
	}
	part := func(from, to time.Time) storage.Span {
		s := span
		s.From, s.To = from, to
		return s
	}
	var out []storage.Query
	if span.From.Before(cut) {
		out = append(out, storage.CountSeries(part(span.From, cut), final, nil))
	}
	if !cut.Before(span.To) {
		return out, nil
	}
	var stored []storage.StoredSeries
	if err := r.db.Select(ctx, &stored, storage.SeriesStoredTwice()); err != nil {
		return nil, fmt.Errorf("read series stored twice: %w", err)
	}
	excluded := make([]uint64, len(stored))
	for i, x := range stored {
		excluded[i] = x.Series
	}
	if len(stored) > 0 {
		out = append(out, storage.CountSeries(part(cut, span.To), final, stored))
	}
	rollups := part(cut, span.To)
	if rollups.Municipality != "" {
		return append(out, storage.CountRollups(rollups, excluded)), nil
	}
	if err := r.wholeDayCounts(ctx, rollups, excluded, c, t, labels); err != nil {
		return nil, err
	}
	return append(out, storage.CountRollupParts(rollups, storage.EdgeDays, excluded, nil)), nil
}

// incidents reads the counted incidents the rules look at: from the
// incident rollup, only those opened before T and due in C or still open
// at T; with Raw, every incident event up to T, judged in Go.
func (r *Reader) incidents(ctx context.Context, at time.Time, w time.Duration, municipality string, cat *Catalogue, h *Hashes) (map[string][]maturity.Incident, error) {
	if r.raw {
		var rows []storage.IncidentRow
		if err := r.db.Select(ctx, &rows, storage.IncidentsUpTo(at, municipality)); err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		return Seen(CountedIncidents(rows, cat, at), at, w), nil
	}
	counted := make([]uint64, 0, len(h.Service))
	for hash := range h.Service {
		counted = append(counted, hash)
	}
	var rows []storage.IncidentState
	if err := r.db.Select(ctx, &rows, storage.IncidentsAt(at, w, counted, municipality)); err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	var ids []storage.IncidentID
	if len(rows) > 0 {
		if err := r.db.Select(ctx, &ids, storage.IncidentIDs(rows)); err != nil {
			return nil, fmt.Errorf("read incident ids: %w", err)
		}
	}
	return IncidentsOf(rows, ids, h), nil
}

// seriesHint is the capacity for rows read per series: about one per
// series that can count, so that the driver, which appends row by row,
// does not grow the slice again and again (a fifth of an evaluation's
// allocations at Catalonia size).
func seriesHint(h *Hashes) int { return len(h.Series) + len(h.Series)/8 }
