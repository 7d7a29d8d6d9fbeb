package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/assoliment/assoliment/services/storage"
)

// The identity index (storage/identities.go): one Set table per month of
// event time. A copy of an event is accepted only within MAX_LATENESS of
// its event time, so the months a stored identity can still be looked up
// in run from the month of now - MAX_LATENESS (one month earlier, for
// messages that waited in the stream up to its seven-day age limit) to the
// month after now (an event may be five minutes ahead of the clock that
// accepted it, and replicas' clocks differ by a little).

// FillPatience is how old a table being filled must be before a starting
// process takes it for the leftover of a stopped one and drops it.
const FillPatience = 24 * time.Hour

// index is the set of month tables known to exist.
type index struct {
	mu     sync.Mutex
	months map[uint32]bool
	// The now of the last preparation and when it happened: the index's
	// clock (time.Now, unless a test prepared it for another instant).
	preparedFor, preparedAt time.Time
}

// now is the index's clock.
func (x *index) now() time.Time {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.preparedAt.IsZero() {
		return time.Now()
	}
	return x.preparedFor.Add(time.Since(x.preparedAt))
}

func (x *index) prepared() []uint32 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Sorted(maps.Keys(x.months))
}

func (x *index) add(m uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.months == nil {
		x.months = map[uint32]bool{}
	}
	x.months[m] = true
}

func (x *index) has(m uint32) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.months[m]
}

// IndexRange is the first and last month whose index tables must exist at
// now, for events accepted within maxLateness of their time.
func IndexRange(now time.Time, maxLateness time.Duration) (first, last uint32) {
	first = storage.Month(storage.MonthStart(storage.Month(now.Add(-maxLateness))).AddDate(0, -1, 0))
	last = storage.Month(storage.MonthStart(storage.Month(now)).AddDate(0, 1, 0))
	return first, last
}

// PrepareIndex makes the index cover the months of IndexRange at now: a
// month without a table is filled from the event tables under a temporary
// name, renamed into place once complete (a process stopped half-way
// leaves no partial table under the final name); tables of earlier months
// are dropped, as are tables left half-filled by a process stopped more
// than FillPatience ago. Every replica may run it at once: of two fills of
// one month, the first renamed stands and the other is dropped. No writer
// can store an event of a month while its table is missing (recording it
// in the index fails first), so a fill misses nothing.
func (s *Store) PrepareIndex(ctx context.Context, now time.Time) error {
	log := s.log
	first, last := IndexRange(now, s.maxLateness)
	var names []storage.TableName
	if err := s.db.Select(ctx, &names, storage.IdentityTables()); err != nil {
		return fmt.Errorf("identity index: list tables: %w", err)
	}
	have := map[uint32]bool{}
	for _, n := range names {
		month, filling, ok := storage.ParseIdentityTable(n.Name)
		switch {
		case !ok:
			continue
		case !filling.IsZero():
			if now.Sub(filling) > FillPatience {
				log.Warn("identity index: dropping a table left half-filled by a stopped process", "table", n.Name)
				if err := s.db.Exec(ctx, storage.DropTable(n.Name)); err != nil {
					return fmt.Errorf("identity index: drop %s: %w", n.Name, err)
				}
			}
		case month < first:
			log.Info("identity index: dropping a month no copy can be accepted for any more", "table", n.Name)
			if err := s.db.Exec(ctx, storage.DropTable(n.Name)); err != nil {
				return fmt.Errorf("identity index: drop %s: %w", n.Name, err)
			}
		default:
			have[month] = true
		}
	}
	for m := first; m <= last; m = storage.Month(storage.MonthStart(m).AddDate(0, 1, 0)) {
		if !have[m] {
			if err := s.fillMonth(ctx, m, now, log); err != nil {
				return err
			}
		}
		have[m] = true
	}
	s.index.mu.Lock()
	s.index.months = have
	s.index.preparedFor, s.index.preparedAt = now, time.Now()
	s.index.mu.Unlock()
	return nil
}

// fillMonth builds the index table of month from the event tables.
func (s *Store) fillMonth(ctx context.Context, month uint32, now time.Time, log *slog.Logger) error {
	start := time.Now()
	fill, final := storage.IdentityFillTable(month, now), storage.IdentityTable(month)
	for _, q := range []storage.Query{storage.CreateIdentityTable(fill), storage.FillIdentities(fill, month)} {
		if err := s.db.Exec(ctx, q); err != nil {
			return fmt.Errorf("identity index: fill %s: %w", fill, err)
		}
	}
	if err := s.db.Exec(ctx, storage.RenameTable(fill, final)); err != nil {
		// Another process filled the month meanwhile: its table stands.
		// ClickHouse says so (the name is taken, though a rename still
		// under way may not be listed yet), or the list of tables does.
		var exc *clickhouse.Exception
		if !errors.As(err, &exc) || exc.Code != tableAlreadyExists {
			var names []storage.TableName
			if lerr := s.db.Select(ctx, &names, storage.IdentityTables()); lerr != nil || !slices.Contains(names, storage.TableName{Name: final}) {
				return fmt.Errorf("identity index: rename %s to %s: %w", fill, final, err)
			}
		}
		if err := s.db.Exec(ctx, storage.DropTable(fill)); err != nil {
			return fmt.Errorf("identity index: drop %s: %w", fill, err)
		}
		return nil
	}
	log.Info("identity index: month filled from the event tables", "table", final, "took", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// Stored returns which of ids are stored, in any event table: the index
// answers for most, and the event tables are read for its hits only (none
// in a batch of new identities: one query), in the months of the hits.
func (s *Store) Stored(ctx context.Context, ids []Identity) (map[Identity]bool, error) {
	found := make(map[Identity]bool)
	candidates, months, err := s.indexHits(ctx, ids)
	if err != nil || len(candidates) == 0 {
		return found, err
	}
	var rows []Identity
	if err := s.db.Select(ctx, &rows, storage.Existing(candidates, months)); err != nil {
		return nil, fmt.Errorf("look up stored identities: %w", err)
	}
	for _, id := range rows {
		found[id] = true
	}
	return found, nil
}

// indexHits returns those of ids whose hash the index holds, and the
// months of the tables that hold them: a stored identity is in the table
// of its row's month, so those months are the only ones to read for
// them. The event tables are read by identity one granule per identity, a
// cost that grows with the partitions read; the hits' months are usually
// one or two of the 13 or more a year keeps.
func (s *Store) indexHits(ctx context.Context, ids []Identity) (candidates []Identity, months []uint32, err error) {
	if len(ids) == 0 {
		return nil, nil, nil
	}
	hashes := make([]uint64, len(ids))
	byHash := make(map[uint64][]Identity, len(ids))
	for i, id := range ids {
		hashes[i] = storage.IdentityHash(id)
		byHash[hashes[i]] = append(byHash[hashes[i]], id)
	}
	var hits []storage.IndexHit
	if err := s.db.Select(ctx, &hits, storage.IndexHits(hashes, s.index.prepared())); err != nil {
		s.repairIfMissing(ctx, err)
		return nil, nil, fmt.Errorf("look up identities in the index: %w", err)
	}
	hitMonths := map[uint32]bool{}
	for _, h := range hits {
		candidates = append(candidates, byHash[h.Hash]...)
		delete(byHash, h.Hash) // a hash in two months names its identities once
		hitMonths[h.Month] = true
	}
	return candidates, slices.Sorted(maps.Keys(hitMonths)), nil
}

// Remember records the identities of rows in the index tables of their
// event months. It must succeed before the rows are inserted: the index
// then holds every stored identity, whatever fails in between.
func (s *Store) Remember(ctx context.Context, rows []Row) error {
	byMonth := map[uint32][]uint64{}
	for i := range rows {
		m := storage.Month(rows[i].Event.Time)
		byMonth[m] = append(byMonth[m], storage.IdentityHash(rows[i].Identity()))
	}
	for _, m := range slices.Sorted(maps.Keys(byMonth)) {
		if !s.index.has(m) {
			// Outside the prepared months (PrepareIndex covers every month
			// an accepted event can have): filled like any missing month.
			if err := s.fillMonth(ctx, m, s.index.now(), s.log); err != nil {
				return err
			}
			s.index.add(m)
		}
		if err := s.db.Exec(ctx, storage.AddIdentities(storage.IdentityTable(m), byMonth[m])); err != nil {
			s.repairIfMissing(ctx, err)
			return fmt.Errorf("record %d identities in the index of %d: %w", len(byMonth[m]), m, err)
		}
	}
	return nil
}

// repairIfMissing prepares the index again at once when err says one of
// its tables is missing (dropped by hand, say): the month is filled from
// the event tables, and the batch's next attempt finds it.
func (s *Store) repairIfMissing(ctx context.Context, err error) {
	var exc *clickhouse.Exception
	if !errors.As(err, &exc) || exc.Code != unknownTable {
		return
	}
	s.log.Warn("identity index: a table is missing; preparing the index again", "err", err)
	if err := s.PrepareIndex(ctx, s.index.now()); err != nil {
		s.log.Error("identity index: preparing failed", "err", err)
	}
}

// ClickHouse's error codes for a table that does not exist, and for a
// name already taken.
const (
	unknownTable       = 60
	tableAlreadyExists = 57
)
