package reader

import (
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
	samples := make([]storage.SeriesSamples, 0, seriesHint(c.h))
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
			rows = make([]storage.SeriesCounts, 0, len(changed))
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
