// Package storagetest stores events for tests the way the ingest service
// does (same tables, columns and versions), without running it, and checks
// that a service's statements need only what its ClickHouse user is
// granted.
package storagetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/storage"
)

// Store writes events to the database of e, one insert per table, with
// stream sequences in the order given (so later events win ties), after
// the sequences of earlier calls.
func Store(tb testing.TB, e storage.Engine, evs ...*contract.Event) {
	tb.Helper()
	StoreFrom(tb, e, seq.Add(uint64(len(evs)))-uint64(len(evs))+1, evs...)
}

// StoreFrom is Store with the stream sequences first, first+1, …: the
// same events stored twice from the same first sequence make the same
// rows.
func StoreFrom(tb testing.TB, e storage.Engine, first uint64, evs ...*contract.Event) {
	tb.Helper()
	var columns storage.EventColumns
	for i, ev := range evs {
		if err := columns.Add(ev, first+uint64(i), time.Unix(0, 0)); err != nil {
			tb.Fatal(err)
		}
	}
	for _, table := range storage.EventTables {
		values := columns.Values(table)
		if err := e.InsertColumns(context.Background(), table, storage.ColumnsOf(table), values); err != nil {
			tb.Fatalf("store %d events in %s: %v", storage.RowCount(values), table, err)
		}
	}
}

var seq, ids atomic.Uint64

// Event returns an event of the type its data says, with a fresh id.
func Event(municipality, publisher string, t time.Time, data any) *contract.Event {
	typ := ""
	switch data.(type) {
	case *contract.ServiceRegistered:
		typ = contract.TypeServiceRegistered
	case *contract.ServiceRetired:
		typ = contract.TypeServiceRetired
	case *contract.SLADefined:
		typ = contract.TypeSLADefined
	case *contract.KPIMeasured:
		typ = contract.TypeKPIMeasured
	case *contract.IncidentOpened:
		typ = contract.TypeIncidentOpened
	case *contract.IncidentResolved:
		typ = contract.TypeIncidentResolved
	}
	return &contract.Event{ID: fmt.Sprintf("ev-%d", ids.Add(1)), Source: "urn:test", Type: typ, Time: t,
		Municipality: municipality, Publisher: publisher, Data: data}
}

// Audited returns e, recording the privileges each statement run through
// it needs (storage.AccessesOf); when the test ends, it fails for every
// one that access does not allow: a statement the service's ClickHouse
// user could not run.
func Audited(tb testing.TB, e storage.Engine, access map[string][]string) storage.Engine {
	a := &audited{Engine: e, access: access, denied: map[storage.Access]string{}}
	tb.Cleanup(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for x, sql := range a.denied {
			tb.Errorf("%s on %s is not granted, needed by: %.300s", x.Privilege, x.Table, sql)
		}
	})
	return a
}

type audited struct {
	storage.Engine
	access map[string][]string
	mu     sync.Mutex
	denied map[storage.Access]string
}

func (a *audited) check(q storage.Query) {
	for _, x := range storage.AccessesOf(q) {
		if !storage.Allows(a.access, x) {
			a.mu.Lock()
			a.denied[x] = q.SQL
			a.mu.Unlock()
		}
	}
}

func (a *audited) Exec(ctx context.Context, q storage.Query) error {
	a.check(q)
	return a.Engine.Exec(ctx, q)
}

func (a *audited) Select(ctx context.Context, dest any, q storage.Query) error {
	a.check(q)
	return a.Engine.Select(ctx, dest, q)
}

func (a *audited) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	a.check(storage.Query{SQL: "INSERT INTO " + table})
	return a.Engine.Insert(ctx, table, columns, rows)
}

func (a *audited) InsertColumns(ctx context.Context, table string, columns []string, values []any) error {
	a.check(storage.Query{SQL: "INSERT INTO " + table})
	return a.Engine.InsertColumns(ctx, table, columns, values)
}
