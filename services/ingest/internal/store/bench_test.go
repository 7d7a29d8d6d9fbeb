package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
)

// BenchmarkFlushSteps times, per batch of 5000 measurements against a table
// that already holds 1,000,000 rows with ids spread over the key, each ClickHouse step of a flush.
func BenchmarkFlushSteps(b *testing.B) {
	ctx := context.Background()
	c := testenv.ClickHouse(b)
	if err := storage.Migrate(ctx, storage.NewConn(c)); err != nil {
		b.Fatal(err)
	}
	s := store.New(c)
	at := time.Now().Add(-time.Hour)
	rows := func(prefix string, n int) ([]store.Row, []store.Identity) {
		out := make([]store.Row, n)
		ids := make([]store.Identity, n)
		for i := range out {
			ev := &contract.Event{ID: fmt.Sprintf("%x-%s-%d", uint32(i*2654435761), prefix, i), Type: contract.TypeKPIMeasured, Time: at,
				Municipality: fmt.Sprintf("m%d", i%50), Publisher: "p", Data: &contract.KPIMeasured{Service: "s", KPI: "k", Value: 1}}
			out[i] = store.Row{Event: ev, StreamSeq: uint64(i), IngestedAt: at}
			ids[i] = out[i].Identity()
		}
		return out, ids
	}
	base, _ := rows("base", 1000000)
	if err := s.Insert(ctx, base); err != nil {
		b.Fatal(err)
	}
	batches := make([][]store.Row, b.N)
	idss := make([][]store.Identity, b.N)
	for i := range batches {
		batches[i], idss[i] = rows(fmt.Sprintf("b%d", i), 5000)
	}
	var existing, insert, converge time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := s.Existing(ctx, idss[i]); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := s.Insert(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := s.Converge(ctx, idss[i]); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		existing += t1.Sub(t0)
		insert += t2.Sub(t1)
		converge += t3.Sub(t2)
	}
	b.ReportMetric(float64(existing.Milliseconds())/float64(b.N), "ms-existing/batch")
	b.ReportMetric(float64(insert.Milliseconds())/float64(b.N), "ms-insert/batch")
	b.ReportMetric(float64(converge.Milliseconds())/float64(b.N), "ms-converge/batch")
}
