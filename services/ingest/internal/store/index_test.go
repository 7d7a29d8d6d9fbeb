package store_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// now of the index tests: with MAX_LATENESS 60 days the index covers
// April (a month before the month of now - 60 days) to August.
var (
	indexNow      = time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC)
	indexLateness = 60 * 24 * time.Hour
)

// audited checks every statement of s against what the ingest's
// ClickHouse user is granted.
func audited(t *testing.T, s *store.Store) *store.Store {
	return s.Audit(func(e storage.Engine) storage.Engine { return storagetest.Audited(t, e, storage.IngestAccess) })
}

func migrated(t *testing.T) (*chconn.Conn, *store.Store) {
	t.Helper()
	c := testenv.ClickHouse(t)
	if err := storage.Migrate(context.Background(), storage.NewConn(c)); err != nil {
		t.Fatal(err)
	}
	return c, audited(t, store.New(c, indexLateness, quiet))
}

func measurement(id string, at time.Time) store.Row {
	return store.Row{Event: &contract.Event{ID: id, Type: contract.TypeKPIMeasured, Time: at, Municipality: "vic", Publisher: "aigues",
		Data: &contract.KPIMeasured{Service: "s", KPI: "k", Value: 1}}, StreamSeq: 1, IngestedAt: at}
}

func indexTables(t *testing.T, c *chconn.Conn) []string {
	t.Helper()
	var names []storage.TableName
	if err := storage.NewConn(c).Select(context.Background(), &names, storage.IdentityTables()); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n.Name
	}
	slices.Sort(out)
	return out
}

func TestIndexRange(t *testing.T) {
	for _, tc := range []struct {
		now         time.Time
		lateness    time.Duration
		first, last uint32
	}{
		{indexNow, indexLateness, 202604, 202608},
		{indexNow, 400 * 24 * time.Hour, 202505, 202608},
		{time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC), time.Minute, 202611, 202701},
	} {
		if first, last := store.IndexRange(tc.now, tc.lateness); first != tc.first || last != tc.last {
			t.Errorf("%v, %v: %d-%d, want %d-%d", tc.now, tc.lateness, first, last, tc.first, tc.last)
		}
	}
}

// TestPrepareIndexFromStoredRows starts from a database that holds events
// and no index, as one written before the index existed: PrepareIndex
// fills every month of the range from the event tables, and every stored
// event is then found; the tables of months no copy can be accepted for
// any more are dropped, and so is a table left half-filled by a process
// stopped long ago, but not one being filled right now.
func TestPrepareIndexFromStoredRows(t *testing.T) {
	ctx := context.Background()
	c, s := migrated(t)
	var rows []store.Row
	var ids []store.Identity
	for i, at := range []time.Time{
		time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), // first instant of the first month
		time.Date(2026, 6, 30, 23, 59, 59, 999_999_999, time.UTC),
		indexNow,
		time.Date(2026, 8, 1, 0, 2, 0, 0, time.UTC), // a little ahead of a clock at the end of July
	} {
		r := measurement(fmt.Sprintf("m-%d", i), at)
		rows = append(rows, r)
		ids = append(ids, r.Identity())
	}
	if err := s.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	db := storage.NewConn(c)
	stale, recent := storage.IdentityFillTable(202607, indexNow.Add(-store.FillPatience-time.Hour)), storage.IdentityFillTable(202606, indexNow.Add(-time.Minute))
	for _, name := range []string{storage.IdentityTable(202602), stale, recent} {
		if err := db.Exec(ctx, storage.CreateIdentityTable(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PrepareIndex(ctx, indexNow); err != nil {
		t.Fatal(err)
	}
	want := []string{storage.IdentityTable(202604), storage.IdentityTable(202605), recent, storage.IdentityTable(202606),
		storage.IdentityTable(202607), storage.IdentityTable(202608)}
	slices.Sort(want)
	if got := indexTables(t, c); !slices.Equal(got, want) {
		t.Fatalf("index tables %v, want %v", got, want)
	}
	found, err := s.Stored(ctx, append(ids, store.Identity{Municipality: "vic", Publisher: "aigues", ID: "new"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != len(ids) {
		t.Fatalf("found %v, want the %d stored events", found, len(ids))
	}
	// Prepared again, nothing changes.
	if err := s.PrepareIndex(ctx, indexNow); err != nil {
		t.Fatal(err)
	}
	if got := indexTables(t, c); !slices.Equal(got, want) {
		t.Fatalf("index tables after a second run %v, want %v", got, want)
	}
}

// TestIndexTrustsItsMisses: an event stored without its identity in the
// index is not found (which is why every writer records identities before
// inserting rows), and an identity in the index whose row was never
// inserted (a writer stopped between the two) is not stored either.
func TestIndexTrustsItsMisses(t *testing.T) {
	ctx := context.Background()
	_, s := migrated(t)
	if err := s.PrepareIndex(ctx, indexNow); err != nil {
		t.Fatal(err)
	}
	remembered, unindexed, halfWritten := measurement("r", indexNow), measurement("u", indexNow), measurement("h", indexNow)
	if err := s.Remember(ctx, []store.Row{remembered, halfWritten}); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, []store.Row{remembered, unindexed}); err != nil {
		t.Fatal(err)
	}
	found, err := s.Stored(ctx, []store.Identity{remembered.Identity(), unindexed.Identity(), halfWritten.Identity()})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || !found[remembered.Identity()] {
		t.Fatalf("found %v, want only the event recorded and stored", found)
	}
}

// TestRememberFillsAMissingMonth: an event of a month the index has no
// table for gets one, filled from the event tables first.
func TestRememberFillsAMissingMonth(t *testing.T) {
	ctx := context.Background()
	c, s := migrated(t)
	if err := s.PrepareIndex(ctx, indexNow); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	before, later := measurement("before", old), measurement("later", old.Add(time.Hour))
	if err := s.Insert(ctx, []store.Row{before}); err != nil {
		t.Fatal(err)
	}
	if err := s.Remember(ctx, []store.Row{later}); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, []store.Row{later}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(indexTables(t, c), storage.IdentityTable(202601)) {
		t.Fatal("no table for January")
	}
	found, err := s.Stored(ctx, []store.Identity{before.Identity(), later.Identity()})
	if err != nil || len(found) != 2 {
		t.Fatalf("found %v, %v", found, err)
	}
}

// TestPrepareIndexConcurrently runs PrepareIndex from four stores at once
// on a database with events, as replicas starting together do: every run
// succeeds and each month has one complete table.
func TestPrepareIndexConcurrently(t *testing.T) {
	ctx := context.Background()
	c, s := migrated(t)
	var rows []store.Row
	for i := range 2000 {
		rows = append(rows, measurement(fmt.Sprintf("c-%d", i), indexNow.Add(-time.Duration(i)*time.Hour)))
	}
	if err := s.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- audited(t, store.New(c, indexLateness, quiet)).PrepareIndex(ctx, indexNow) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := indexTables(t, c); len(got) != 5 {
		t.Fatalf("index tables %v, want one for each month from April to August", got)
	}
	if err := s.PrepareIndex(ctx, indexNow); err != nil {
		t.Fatal(err)
	}
	ids := make([]store.Identity, 0, len(rows))
	for _, r := range rows {
		if !r.Event.Time.Before(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
			ids = append(ids, r.Identity())
		}
	}
	found, err := s.Stored(ctx, ids)
	if err != nil || len(found) != len(ids) {
		t.Fatalf("found %d of %d, %v", len(found), len(ids), err)
	}
}

// TestIndexRepairedWhenATableIsDropped: a month's table dropped under a
// running store makes the next look-up fail once; the store then fills
// the month again from the event tables, and the retry finds what it
// holds.
func TestIndexRepairedWhenATableIsDropped(t *testing.T) {
	ctx := context.Background()
	c, s := migrated(t)
	if err := s.PrepareIndex(ctx, indexNow); err != nil {
		t.Fatal(err)
	}
	r := measurement("kept", indexNow)
	if err := s.Remember(ctx, []store.Row{r}); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, []store.Row{r}); err != nil {
		t.Fatal(err)
	}
	if err := storage.NewConn(c).Exec(ctx, storage.DropTable(storage.IdentityTable(202607))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stored(ctx, []store.Identity{r.Identity()}); err == nil {
		t.Fatal("a look-up over a dropped table succeeded")
	}
	found, err := s.Stored(ctx, []store.Identity{r.Identity()})
	if err != nil || !found[r.Identity()] {
		t.Fatalf("after the repair: %v, %v", found, err)
	}
}
