// Package store writes accepted events to ClickHouse and finds which
// identities are already stored, with the tables and queries of the
// storage package.
package store

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/storage"
)

// Identity is what makes an event unique.
type Identity = storage.Identity

// Row is an accepted event with where it came from in the stream.
type Row struct {
	Event      *contract.Event
	StreamSeq  uint64
	IngestedAt time.Time
}

// Identity of the row's event.
func (r *Row) Identity() Identity {
	return Identity{Municipality: r.Event.Municipality, Publisher: r.Event.Publisher, ID: r.Event.ID}
}

// Store is the ClickHouse side of the ingest service.
type Store struct {
	c           *chconn.Conn
	db          storage.Engine
	maxLateness time.Duration
	log         *slog.Logger
	index       index
}

// New returns a store on c for events accepted within maxLateness of
// their time; PrepareIndex readies its identity index.
func New(c *chconn.Conn, maxLateness time.Duration, log *slog.Logger) *Store {
	return &Store{c: c, db: storage.NewConn(c), maxLateness: maxLateness, log: log}
}

// Ping checks the server answers.
func (s *Store) Ping(ctx context.Context) error { return s.c.Ping(ctx) }

// Converge finds measurements of ids stored more than once (two replicas
// handled two copies at the same moment), records them in the duplicates
// table, so readers deduplicate meanwhile, merges their partitions so one
// row per identity remains, and marks them resolved. It returns how many
// identities were stored twice.
func (s *Store) Converge(ctx context.Context, ids []Identity) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	// Two writers that raced both recorded the identity in the index
	// first: only its hits can be stored twice, in the months of the hits.
	candidates, months, err := s.indexHits(ctx, ids)
	if err != nil || len(candidates) == 0 {
		return 0, err
	}
	var twice []storage.StoredTwice
	if err := s.db.Select(ctx, &twice, storage.FindStoredTwice(candidates, months)); err != nil {
		return 0, fmt.Errorf("look for identities stored twice: %w", err)
	}
	if len(twice) == 0 {
		return 0, nil
	}
	dups := make([]Identity, 0, len(twice))
	parts := map[uint32]bool{}
	for _, d := range twice {
		dups = append(dups, d.Identity)
		for _, p := range d.Partitions {
			parts[p] = true
		}
	}
	if err := s.markDuplicates(ctx, dups, false); err != nil {
		return 0, err
	}
	for p := range parts {
		if err := s.db.Exec(ctx, storage.MergePartition(p)); err != nil {
			return 0, fmt.Errorf("merge partition %d: %w", p, err)
		}
	}
	// OPTIMIZE returns without merging when a merge of the partition is
	// already running: the copies are resolved only once they are gone, or
	// the batch is tried again (and stays unacknowledged) until they are.
	var left []storage.StoredTwice
	if err := s.db.Select(ctx, &left, storage.FindStoredTwice(dups, slices.Sorted(maps.Keys(parts)))); err != nil {
		return 0, fmt.Errorf("look for identities stored twice after merging: %w", err)
	}
	if len(left) > 0 {
		return 0, fmt.Errorf("%d identities still stored twice after merging their partitions; merging again", len(left))
	}
	return len(dups), s.markDuplicates(ctx, dups, true)
}

func (s *Store) markDuplicates(ctx context.Context, ids []Identity, resolved bool) error {
	now := time.Now()
	rows := make([][]any, 0, len(ids))
	for _, id := range ids {
		rows = append(rows, storage.DuplicateRow(id, resolved, now))
	}
	if err := s.db.Insert(ctx, storage.Duplicates, storage.DuplicateColumns, rows); err != nil {
		return fmt.Errorf("record duplicates: %w", err)
	}
	return nil
}

// Insert writes rows with one batch insert per table, and returns once the
// server has committed them.
func (s *Store) Insert(ctx context.Context, rows []Row) error {
	var columns storage.EventColumns
	for _, r := range rows {
		if err := columns.Add(r.Event, r.StreamSeq, r.IngestedAt); err != nil {
			return err
		}
	}
	for _, table := range storage.EventTables {
		values := columns.Values(table)
		if err := s.db.InsertColumns(ctx, table, storage.ColumnsOf(table), values); err != nil {
			return fmt.Errorf("insert %d rows into %s: %w", storage.RowCount(values), table, err)
		}
	}
	return nil
}
