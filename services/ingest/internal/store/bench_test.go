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
// that already holds 1,000,000 rows with ids spread over the key (and their
// identities in the index), each ClickHouse step of a flush: the look-up,
// recording the identities in the index, the insert, and the race check
// that runs only around a change of writer.
func BenchmarkFlushSteps(b *testing.B) {
	ctx := context.Background()
	c := testenv.ClickHouse(b)
	if err := storage.Migrate(ctx, storage.NewConn(c)); err != nil {
		b.Fatal(err)
	}
	s := store.New(c, 400*24*time.Hour, quiet)
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
	if err := s.PrepareIndex(ctx, time.Now()); err != nil {
		b.Fatal(err)
	}
	batches := make([][]store.Row, b.N)
	idss := make([][]store.Identity, b.N)
	for i := range batches {
		batches[i], idss[i] = rows(fmt.Sprintf("b%d", i), 5000)
	}
	var lookup, remember, insert, converge time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := s.Stored(ctx, idss[i]); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := s.Remember(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		if err := s.Insert(ctx, batches[i]); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		if _, err := s.Converge(ctx, idss[i]); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		lookup += t1.Sub(t0)
		remember += t2.Sub(t1)
		insert += t3.Sub(t2)
		converge += t4.Sub(t3)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(lookup), "ms-lookup/batch")
	b.ReportMetric(ms(remember), "ms-remember/batch")
	b.ReportMetric(ms(insert), "ms-insert/batch")
	b.ReportMetric(ms(converge), "ms-race-check/batch")
}
