package reader

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/storage"
)

// failing is an engine that answers the catalogue with one SLA and fails
// the statement whose SQL starts with failOn; it records every statement.
type failing struct {
	mu     sync.Mutex
	failOn string
	execs  []string
}

func (f *failing) Exec(_ context.Context, q storage.Query) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs = append(f.execs, q.SQL)
	if strings.HasPrefix(q.SQL, f.failOn) {
		return errors.New("injected failure")
	}
	return nil
}

func (f *failing) Select(_ context.Context, dest any, q storage.Query) error {
	if strings.HasPrefix(q.SQL, f.failOn) {
		return errors.New("injected failure")
	}
	if print, ok := dest.(*[]storage.Fingerprint); ok {
		*print = []storage.Fingerprint{{Rows: 2}}
	}
	if rows, ok := dest.(*[]storage.CatalogueRow); ok {
		t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
		*rows = []storage.CatalogueRow{
			{Municipality: "vic", Type: contract.TypeServiceRegistered, Service: "s", Time: t, Delivery: contract.DeliveryOwn, Provider: contract.Council},
			{Municipality: "vic", Type: contract.TypeSLADefined, Service: "s", KPI: "k", Time: t, Direction: contract.HigherIsBetter, Target: 1, Objective: 0.9},
		}
	}
	return nil
}

func (f *failing) Insert(context.Context, string, []string, [][]any) error { return nil }

func (f *failing) InsertColumns(context.Context, string, []string, []any) error { return nil }

// TestTargetTableDroppedOnFailure: whatever step of an evaluation fails
// after the SLA target table is created, the table is dropped.
func TestTargetTableDroppedOnFailure(t *testing.T) {
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, step := range []string{"INSERT INTO " + storage.TargetTablePrefix, "SELECT countIf(resolved", "SELECT count() AS n, toUInt32", "SELECT series, any"} {
		f := &failing{failOn: step}
		if _, err := New(f).Read(context.Background(), at, 30*24*time.Hour, ""); err == nil {
			t.Fatalf("%s: no error", step)
		}
		var created, dropped string
		for _, s := range f.execs {
			if name, ok := strings.CutPrefix(s, "CREATE TABLE "); ok {
				created = strings.Fields(name)[0]
			}
			if name, ok := strings.CutPrefix(s, "DROP TABLE IF EXISTS "); ok {
				dropped = name
			}
		}
		if created == "" || dropped != created {
			t.Errorf("failure in %q: created %q, dropped %q\n%s", step, created, dropped, strings.Join(f.execs, "\n"))
		}
	}
}
