package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/storage"
)

// insertResult is what the rollups' views add to the ingest's inserts.
type insertResult struct {
	Batches         int     `json:"insert_batches"`
	BatchSize       int     `json:"batch_size"`
	WithViewsMs     float64 `json:"median_insert_ms_with_views"`
	WithoutViewsMs  float64 `json:"median_insert_ms_without_views"`
	WithViewsEvS    float64 `json:"events_per_second_with_views"`
	WithoutViewsEvS float64 `json:"events_per_second_without_views"`
}

// insertCost inserts the same batches of measurements, as the ingest
// service writes them (one insert of the storage module's columns per
// batch), into a fresh database with the rollups' views and into one
// whose measurement view is dropped, and compares the median times.
func insertCost(ctx context.Context, addr string, batches, size int) (*insertResult, error) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now().UTC()
	data := make([]storage.EventColumns, batches)
	seq := uint64(0)
	for b := range data {
		for range size {
			seq++
			s := rng.IntN(947 * seriesPer)
			e := &contract.Event{ID: fmt.Sprintf("ins-%d", seq), Source: "urn:bench", Type: contract.TypeKPIMeasured,
				Time: now.Add(-time.Duration(rng.Int64N(int64(48 * time.Hour)))), Municipality: fmt.Sprintf("m-%d", s/seriesPer),
				Publisher: fmt.Sprintf("provider-%d", s%8), Data: &contract.KPIMeasured{Service: fmt.Sprintf("s%d", s/3%20), KPI: fmt.Sprintf("k%d", s%3), Value: rng.Float64()}}
			if err := data[b].Add(e, seq, now); err != nil {
				return nil, err
			}
		}
	}
	median := func(db string, dropView bool) (float64, error) {
		defer dropDatabase(context.Background(), addr, db)
		if err := dropDatabase(ctx, addr, db); err != nil {
			return 0, err
		}
		c, err := open(ctx, addr, db)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		e := storage.NewConn(c) // Open created the database
		if err := storage.Migrate(ctx, e); err != nil {
			return 0, err
		}
		if dropView {
			if err := c.Exec(ctx, "DROP TABLE "+c.Table("measurement_days_mv")); err != nil {
				return 0, err
			}
		}
		var ms []float64
		for i := range data {
			start := time.Now()
			if err := e.InsertColumns(ctx, storage.Measurements, storage.MeasurementColumns, data[i].Values(storage.Measurements)); err != nil {
				return 0, err
			}
			ms = append(ms, float64(time.Since(start).Microseconds())/1000)
		}
		slices.Sort(ms)
		return ms[len(ms)/2], nil
	}
	with, err := median("bench_insert_views", false)
	if err != nil {
		return nil, err
	}
	without, err := median("bench_insert_plain", true)
	if err != nil {
		return nil, err
	}
	return &insertResult{Batches: batches, BatchSize: size, WithViewsMs: with, WithoutViewsMs: without,
		WithViewsEvS: float64(size) / with * 1000, WithoutViewsEvS: float64(size) / without * 1000}, nil
}
