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
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/assoliment/assoliment/services/contract"
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

// wholeDays are the counts of the whole days of a span (those no window
// edge cuts), per series, kept between evaluations of every municipality:
// they stay the same while T moves within a day, and a series' counts are
// read again only when its samples on those days change. The rollup only
// ever gains rows, so equal samples mean equal measurements.
type wholeDays struct {
	key      string // storage.Span.WholeDaysKey: which days, in which windows
	excluded string // the series left out (stored twice)
	rows     map[uint64]wholeDaysRow
}

// wholeDaysRow are the counts of one series, read when it had samples on
// the whole days and was judged so.
type wholeDaysRow struct {
	samples uint64
	judged  judgement
	counts  storage.SeriesCounts // zero when the series had no row
}

// catalogueAt is the catalogue in force at T, with what follows from it
// alone: the hashes of the series that can count and the rows of the SLA
// target table. Read when the catalogue table had fingerprint print, it
// holds for every T in [from, until), where the events up to T are the
// same. Nothing may change it: evaluations share it.
type catalogueAt struct {
	print       storage.Fingerprint
	from, until int64
	cat         *Catalogue
	h           *Hashes
	targets     *storage.External
	judged      map[uint64]judgement // the target of each SLA series, by hash
}

// judgement is how the samples of a series are judged: against the
// target of its SLA (none: the zero judgement).
type judgement struct {
	lower  bool
	target float64
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

// catalogueAt returns the catalogue in force at T and what follows from it.
// For every municipality, it is kept until the catalogue table changes or
// T passes one of its events: the periodic evaluations, 30 s apart, mostly
// find it unchanged, and the table is then read as one fingerprint. For one
// municipality (?at=), and with Raw, its events up to T are read.
func (r *Reader) catalogueAt(ctx context.Context, at time.Time, municipality string) (*catalogueAt, error) {
	if r.raw || municipality != "" {
		var rows []storage.CatalogueRow
		if err := r.db.Select(ctx, &rows, storage.CatalogueUpTo(at, municipality)); err != nil {
			return nil, fmt.Errorf("read catalogue: %w", err)
		}
		return newCatalogueAt(rows, at, storage.Fingerprint{}), nil
	}
	var print []storage.Fingerprint
	if err := r.db.Select(ctx, &print, storage.CatalogueFingerprint()); err != nil {
		return nil, fmt.Errorf("read catalogue fingerprint: %w", err)
	}
	if len(print) != 1 {
		return nil, fmt.Errorf("read catalogue fingerprint: %d rows", len(print))
	}
	r.mu.Lock()
	c := r.built
	r.mu.Unlock()
	if t := at.UnixNano(); c != nil && c.print == print[0] && c.from <= t && t < c.until {
		return c, nil
	}
	// Rows read after the fingerprint are at least as new as it.
	var rows []storage.CatalogueRow
	if err := r.db.Select(ctx, &rows, storage.Catalogue()); err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	c = newCatalogueAt(rows, at, print[0])
	r.mu.Lock()
	r.built = c
	r.mu.Unlock()
	return c, nil
}

func newCatalogueAt(rows []storage.CatalogueRow, at time.Time, print storage.Fingerprint) *catalogueAt {
	c := &catalogueAt{print: print, from: math.MinInt64, until: math.MaxInt64, cat: BuildCatalogue(rows, at)}
	limit := at.UnixNano()
	for i := range rows {
		if t := rows[i].Time; t <= limit {
			c.from = max(c.from, t)
		} else {
			c.until = min(c.until, t)
		}
	}
	c.h = NewHashes(c.cat)
	c.targets = storage.TargetRows(targets(c.cat))
	c.judged = make(map[uint64]judgement, len(c.h.Series))
	for hash, x := range c.h.Series {
		if sla := c.cat.SLAs[x.Municipality][maturity.SLAKey{Service: x.Service, KPI: x.KPI}]; sla != nil {
			c.judged[hash] = judgement{lower: sla.Direction == contract.LowerIsBetter, target: sla.Target}
		}
	}
	return c
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
		var rows []storage.SeriesCounts
		if err := r.db.Select(ctx, &rows, q); err != nil {
			return nil, fmt.Errorf("read measurements: %w", err)
		}
		t.AddSeries(rows, labels, h)
	}
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

// wholeDayCounts adds to t the counts of the whole days of s, reading
// again those of the series whose samples there, or whose SLA target,
// changed since the last call (of every series when the days or the series
// left out differ). The samples are read first: counts read after them are
// at least as new, so a change between the two reads is read again next
// time. What is kept changes only once both reads have succeeded.
func (r *Reader) wholeDayCounts(ctx context.Context, s storage.Span, excluded []uint64, c *catalogueAt, t *Tally, labels []string) error {
	r.wholeMu.Lock()
	defer r.wholeMu.Unlock()
	key, ex := s.WholeDaysKey(), fmt.Sprint(slices.Sorted(slices.Values(excluded)))
	kept := r.whole
	if kept == nil || kept.key != key || kept.excluded != ex {
		kept = &wholeDays{key: key, excluded: ex}
	}
	var samples []storage.SeriesSamples
	if err := r.db.Select(ctx, &samples, storage.WholeDaySamples(s, excluded)); err != nil {
		return fmt.Errorf("read samples of whole days: %w", err)
	}
	valid := func(series, samples uint64) (wholeDaysRow, bool) {
		row, ok := kept.rows[series]
		return row, ok && row.samples == samples && row.judged == c.judged[series]
	}
	var changed []uint64
	for _, x := range samples {
		if _, ok := valid(x.Series, x.Samples); !ok {
			changed = append(changed, x.Series)
		}
	}
	if len(changed) > 0 || len(kept.rows) != len(samples) {
		var rows []storage.SeriesCounts
		if len(changed) > 0 {
			only := changed
			if len(changed) == len(samples) {
				only = nil // every series: no list to send
			}
			if err := r.db.Select(ctx, &rows, storage.CountRollupParts(s, storage.WholeDays, excluded, only)); err != nil {
				return fmt.Errorf("read measurements of whole days: %w", err)
			}
		}
		next := &wholeDays{key: key, excluded: ex, rows: make(map[uint64]wholeDaysRow, len(samples))}
		for _, x := range samples {
			row, ok := valid(x.Series, x.Samples)
			if !ok {
				row = wholeDaysRow{samples: x.Samples, judged: c.judged[x.Series]}
			}
			next.rows[x.Series] = row
		}
		for i := range rows {
			if row, ok := next.rows[rows[i].Series]; ok {
				row.counts = rows[i]
				next.rows[rows[i].Series] = row
			}
		}
		kept = next
	}
	r.whole = kept
	for series := range kept.rows {
		if row := kept.rows[series]; row.counts.Last != 0 {
			t.add(&row.counts, labels, c.h)
		}
	}
	return nil
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

func known(cat *Catalogue) []string {
	out := make([]string, 0, len(cat.Known))
	for m := range cat.Known {
		out = append(out, m)
	}
	return out
}
