package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/assoliment/assoliment/services/storage"
)

// timed is an engine that adds up the time of its statements per phase
// of an evaluation, named from what each statement reads.
type timed struct {
	storage.Engine
	mu     sync.Mutex
	phases map[string]time.Duration
}

func (e *timed) add(q storage.Query, start time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.phases[phase(q.SQL)] += time.Since(start)
}

func (e *timed) Exec(ctx context.Context, q storage.Query) error {
	defer e.add(q, time.Now())
	return e.Engine.Exec(ctx, q)
}

func (e *timed) Select(ctx context.Context, dest any, q storage.Query) error {
	defer e.add(q, time.Now())
	return e.Engine.Select(ctx, dest, q)
}

func (e *timed) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	defer e.add(storage.Query{SQL: "INSERT INTO " + table}, time.Now())
	return e.Engine.Insert(ctx, table, columns, rows)
}

func (e *timed) InsertColumns(ctx context.Context, table string, columns []string, values []any) error {
	defer e.add(storage.Query{SQL: "INSERT INTO " + table}, time.Now())
	return e.Engine.InsertColumns(ctx, table, columns, values)
}

// take returns the phases so far and starts again.
func (e *timed) take() map[string]time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.phases
	e.phases = map[string]time.Duration{}
	return out
}

func phase(sql string) string {
	for _, p := range []struct{ needle, name string }{
		{"FROM " + storage.Catalog, "catalogue"},
		{storage.WholeDayCounts, "kept whole days"},
		{"shifted_samples", "whole days shifted to another day"},
		{storage.MeasurementDays, "measurements (rollups)"},
		{"FROM " + storage.Measurements, "measurements (event table)"},
		{storage.RollupCoverage, "duplicates and coverage"},
		{storage.Duplicates, "duplicates and coverage"},
		{storage.IncidentKeys, "incidents"},
		{"FROM " + storage.Incidents, "incidents"},
		{storage.TargetTablePrefix, "SLA target table"},
	} {
		if strings.Contains(sql, p.needle) {
			return p.name
		}
	}
	return "other"
}
