package reader

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/storage"
)

// What a Reader keeps between evaluations of every municipality, which
// the periodic evaluations, 30 s apart, mostly find unchanged: the
// catalogue at T with what follows from it, and the counts of the whole
// days of the windows.

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

// wholeDays are the counts of the whole days of a span (those no window
// edge cuts), per series, kept between evaluations of every municipality:
// they stay the same while T moves within a day, and a series' counts are
// read again only when its samples on those days change. The rollup only
// ever gains rows, so equal samples mean equal measurements.
type wholeDays struct {
	span     storage.KeptSpan // which days, in which windows, without which series (stored twice)
	s        storage.Span
	excluded []uint64 // sorted
	rows     map[uint64]wholeDaysRow
}

// wholeDaysRow are the counts of one series, read when it had samples on
// the whole days and was judged so.
type wholeDaysRow struct {
	samples uint64
	judged  judgement
	counts  storage.SeriesCounts // zero when the series had no row
}

// catalogueHintCap caps the capacity of the catalogue's rows allocated
// before they are read (about the catalogue of 3,000 municipalities).
const catalogueHintCap = 1 << 18

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
	// The driver appends row by row: a capacity from the row count saves
	// copying the rows again and again. Only a hint: the count includes
	// the rows of publishers other than the council, which are not read,
	// so it is capped.
	rows := make([]storage.CatalogueRow, 0, min(print[0].Rows+print[0].Rows/8, catalogueHintCap))
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

// wholeDayCounts adds to t the counts of the whole days of s, reading
// again those of the series whose samples there, or whose SLA target,
// changed since the last call (of every series when the days or the series
// left out differ). The samples are read first: counts read after them are
// at least as new, so a change between the two reads is read again next
// time. What is kept changes only once both reads have succeeded.
//
// Counts read are also written to WholeDayCounts, and a reader that has
// kept nothing for the span yet (after a start, at midnight) takes from
// there the counts that hold for the series' samples and targets: another
// evaluator, or this one before it stopped, counted them.
func (r *Reader) wholeDayCounts(ctx context.Context, s storage.Span, excluded []uint64, c *catalogueAt, t *Tally, labels []string) error {
	r.wholeMu.Lock()
	defer r.wholeMu.Unlock()
	span := storage.KeptSpanOf(s, excluded)
	samples := make([]storage.SeriesSamples, 0, seriesHint(c.h))
	if err := r.db.Select(ctx, &samples, storage.WholeDaySamples(s, excluded)); err != nil {
		return fmt.Errorf("read samples of whole days: %w", err)
	}
	kept := r.whole
	fresh := kept == nil || kept.span != span
	var derived map[uint64]bool // rows shifted from the last span's, to write
	if fresh {
		stored, err := r.storedWholeDays(ctx, span, func() ([]storage.SeriesSamples, error) { return samples, nil }, c)
		if err != nil {
			return err
		}
		next := &wholeDays{span: span, s: s, excluded: slices.Sorted(slices.Values(excluded)), rows: stored}
		// Most series not kept for the span (T moved to another day, or a
		// start on a day no evaluator has evaluated yet): the last span's
		// counts, or the day before's, shifted. A few missing (an
		// intruder's series, never kept) are cheaper to count.
		if 2*len(stored) < len(samples) {
			last := kept
			if last == nil {
				if last, err = r.keptTheDayBefore(ctx, next, c); err != nil {
					return err
				}
			}
			if last != nil {
				shifted, err := r.shiftedWholeDays(ctx, last, next, samples, c)
				if err != nil {
					return err
				}
				derived = make(map[uint64]bool, len(shifted))
				for series, row := range shifted {
					if _, ok := next.rows[series]; !ok {
						next.rows[series] = row
						derived[series] = true
					}
				}
			}
		}
		kept = next
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
	if len(changed) > 0 || len(kept.rows) != len(samples) || len(derived) > 0 {
		var rows []storage.SeriesCounts
		if len(changed) > 0 {
			rows = make([]storage.SeriesCounts, 0, len(changed))
			only := changed
			if len(changed) == len(samples) {
				only = nil // every series: no list to send
			}
			if err := r.db.Select(ctx, &rows, storage.CountRollupParts(s, storage.WholeDays, excluded, only)); err != nil {
				return fmt.Errorf("read measurements of whole days: %w", err)
			}
		}
		next := &wholeDays{span: span, s: s, excluded: kept.excluded, rows: make(map[uint64]wholeDaysRow, len(samples))}
		for _, x := range samples {
			row, ok := valid(x.Series, x.Samples)
			if !ok {
				row = wholeDaysRow{samples: x.Samples, judged: c.judged[x.Series]}
			}
			next.rows[x.Series] = row
		}
		written := make([]storage.KeptCounts, 0, len(rows)+len(derived))
		for series := range derived {
			if row := next.rows[series]; c.h.counts(&row.counts) {
				written = append(written, keptCounts(row))
			}
		}
		for i := range rows {
			if row, ok := next.rows[rows[i].Series]; ok {
				row.counts = rows[i]
				next.rows[rows[i].Series] = row
				// Only the series that count are kept in the table: any
				// publisher can add series (an intruder, an invented
				// municipality), and a start counts those again.
				if c.h.counts(&rows[i]) {
					written = append(written, keptCounts(row))
				}
			}
		}
		if len(written) > 0 {
			if err := r.db.InsertColumns(ctx, storage.WholeDayCounts, storage.KeptCountsColumns, storage.KeptCountsValues(span, written)); err != nil {
				return fmt.Errorf("write counts of whole days: %w", err)
			}
			if fresh {
				if err := r.dropKeptBefore(ctx, span.End-1); err != nil {
					return err
				}
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

// shiftedWholeDays derives the counts of next's whole days from those
// kept for the last span's, when T has moved to another day: only the days
// that a window gained or lost are read (about one per window edge, not
// the 58 whole days of a first count). A series' row holds when its
// samples over the last span's days plus those gained minus those lost are
// its samples now (no sample came on the last span's days since it was
// counted), its SLA target is the same and its latest instant is known;
// the other series are counted again.
func (r *Reader) shiftedWholeDays(ctx context.Context, last, next *wholeDays, samples []storage.SeriesSamples, c *catalogueAt) (map[uint64]wholeDaysRow, error) {
	if !slices.Equal(last.excluded, next.excluded) {
		return nil, nil
	}
	q, ok := storage.WholeDaysShift(last.s, next.s, next.excluded)
	if !ok {
		return nil, nil
	}
	var shifts []storage.ShiftedCounts
	if err := r.db.Select(ctx, &shifts, q); err != nil {
		return nil, fmt.Errorf("read the days the windows gained and lost: %w", err)
	}
	changes := make(map[uint64]*storage.ShiftedCounts, len(shifts))
	for i := range shifts {
		changes[shifts[i].Series] = &shifts[i]
	}
	var none storage.ShiftedCounts
	out := make(map[uint64]wholeDaysRow, len(samples))
	for _, x := range samples {
		row, had := last.rows[x.Series]
		judged := c.judged[x.Series]
		if had && (row.judged != judged || row.counts.Last == 0) {
			continue
		}
		change := cmp.Or(changes[x.Series], &none)
		if int64(row.samples)+change.Samples != int64(x.Samples) {
			continue
		}
		counts := row.counts
		if !counts.Shift(change) {
			continue
		}
		counts.Series = x.Series
		if !had {
			counts.ServiceHash, counts.MunicipalityHash = change.ServiceHash, change.MunicipalityHash
		}
		// The latest instant: on the days gained when there is one later
		// than the last span's, else the last span's when its day is
		// still whole; else which day holds it is not known.
		switch latest := row.counts.Last; {
		case change.Last > latest:
			counts.Last = change.Last
		case latest == 0 || !next.s.WholeDay(time.Unix(0, latest)):
			continue
		}
		out[x.Series] = wholeDaysRow{samples: x.Samples, judged: judged, counts: counts}
	}
	return out, nil
}

// keptTheDayBefore returns the counts evaluators kept in WholeDayCounts
// for next's span the day before, at the same time of day, that still
// hold (nil when none): an evaluator that starts on a day no evaluator has
// evaluated yet shifts them instead of counting every whole day.
func (r *Reader) keptTheDayBefore(ctx context.Context, next *wholeDays, c *catalogueAt) (*wholeDays, error) {
	before := next.s
	before.At, before.From, before.To = before.At.Add(-24*time.Hour), before.From.Add(-24*time.Hour), before.To.Add(-24*time.Hour)
	span := storage.KeptSpanOf(before, next.excluded)
	rows, err := r.storedWholeDays(ctx, span, func() ([]storage.SeriesSamples, error) {
		samples := make([]storage.SeriesSamples, 0, seriesHint(c.h))
		if err := r.db.Select(ctx, &samples, storage.WholeDaySamples(before, next.excluded)); err != nil {
			return nil, fmt.Errorf("read samples of the day before's whole days: %w", err)
		}
		return samples, nil
	}, c)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &wholeDays{span: span, s: before, excluded: next.excluded, rows: rows}, nil
}

// storedWholeDays reads the counts of span's whole days that evaluators
// wrote, and keeps, per series, those that hold for its samples now
// (readSamples, called only when there are counts: a row holds for the
// samples it names, whenever they are read) and its SLA target now.
func (r *Reader) storedWholeDays(ctx context.Context, span storage.KeptSpan, readSamples func() ([]storage.SeriesSamples, error), c *catalogueAt) (map[uint64]wholeDaysRow, error) {
	stored := make([]storage.KeptCounts, 0, seriesHint(c.h))
	if err := r.db.Select(ctx, &stored, storage.KeptWholeDays(span)); err != nil {
		return nil, fmt.Errorf("read kept counts of whole days: %w", err)
	}
	if len(stored) == 0 {
		return map[uint64]wholeDaysRow{}, nil
	}
	samples, err := readSamples()
	if err != nil {
		return nil, err
	}
	now := make(map[uint64]uint64, len(samples))
	for _, x := range samples {
		now[x.Series] = x.Samples
	}
	out := make(map[uint64]wholeDaysRow, len(samples))
	conflicting := map[uint64]bool{}
	for i := range stored {
		x := &stored[i]
		judged := judgement{lower: x.Lower == 1, target: x.Target}
		if n, ok := now[x.Series]; !ok || n != x.Samples || judged != c.judged[x.Series] || x.Last == 0 {
			continue
		}
		// Two rows that hold with different counts (evaluators that read
		// the samples, then counts that had grown since): neither is
		// taken, the series is counted again.
		if kept, ok := out[x.Series]; ok && kept.counts != x.SeriesCounts {
			conflicting[x.Series] = true
		}
		out[x.Series] = wholeDaysRow{samples: x.Samples, judged: judged, counts: x.SeriesCounts}
	}
	for series := range conflicting {
		delete(out, series)
	}
	return out, nil
}

// keptCounts is what WholeDayCounts keeps of row.
func keptCounts(row wholeDaysRow) storage.KeptCounts {
	k := storage.KeptCounts{SeriesCounts: row.counts, Samples: row.samples, Target: row.judged.target}
	if row.judged.lower {
		k.Lower = 1
	}
	return k
}

// dropKeptBefore drops the counts WholeDayCounts keeps of spans that end
// before day end: no evaluation of the present reads them again.
func (r *Reader) dropKeptBefore(ctx context.Context, end uint32) error {
	var parts []storage.Partition
	if err := r.db.Select(ctx, &parts, storage.KeptPartitions()); err != nil {
		return fmt.Errorf("list partitions of kept counts: %w", err)
	}
	for _, day := range storage.KeptPartitionsBefore(parts, end) {
		if err := r.db.Exec(ctx, storage.DropKeptPartition(day)); err != nil {
			return fmt.Errorf("drop kept counts of day %d: %w", day, err)
		}
	}
	return nil
}
