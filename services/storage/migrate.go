package storage

import (
	"context"
	"embed"
	"fmt"
	"slices"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var files embed.FS

// Migration is one numbered change of the schema. Its steps are each safe
// to run again and to run from two processes at once, so replicas that
// start together, or a process stopped half-way, never leave a database
// that a later run cannot finish.
type Migration struct {
	Version uint32
	Name    string
	Steps   []Step
}

// Step is one statement of a migration. A step with Table and Column set
// adds that column, and is skipped when the column exists (ClickHouse 18.16
// has no ADD COLUMN IF NOT EXISTS); other steps must be idempotent by
// themselves (CREATE TABLE IF NOT EXISTS).
type Step struct {
	SQL           string
	Table, Column string
}

// AddColumn is a step that adds column to table with the given definition
// (type, default and position), unless it exists.
func AddColumn(table, column, definition string) Step {
	return Step{SQL: fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", table, column, definition), Table: table, Column: column}
}

// Migrations is the schema's history, oldest first. Never edit one that
// has shipped: add a new one.
var Migrations = []Migration{
	{Version: 1, Name: "event tables", Steps: sqlFile("migrations/001_events.sql")},
	{Version: 2, Name: "level history", Steps: sqlFile("migrations/002_maturity_changes.sql")},
	{Version: 3, Name: "event times to the nanosecond", Steps: []Step{
		AddColumn(Measurements, "time_ns", nsColumn),
		AddColumn(Catalog, "time_ns", nsColumn),
		AddColumn(Incidents, "time_ns", nsColumn),
	}},
	{Version: 4, Name: "evaluation rollups", Steps: sqlFile("migrations/004_evaluation_rollups.sql")},
	{Version: 5, Name: "incident candidates", Steps: sqlFile("migrations/005_incident_candidates.sql")},
	{Version: 6, Name: "kept whole days", Steps: sqlFile("migrations/006_whole_day_counts.sql")},
}

// nsColumn is time_ns: nanoseconds within the second. Rows stored before
// it existed read it from their milliseconds.
const nsColumn = "UInt32 DEFAULT toUInt32(time_ms) * 1000000 AFTER time_ms"

// sqlFile reads the statements of an embedded file: ;-separated, -- comments
// dropped.
func sqlFile(name string) []Step {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded: a missing file is a build mistake
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
			lines = append(lines, l)
		}
	}
	var out []Step
	for _, s := range strings.Split(strings.Join(lines, "\n"), ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, Step{SQL: s})
		}
	}
	return out
}

// MigrationsTableSQL creates the table of applied migrations.
const MigrationsTableSQL = "CREATE TABLE IF NOT EXISTS " + SchemaMigrations +
	" (version UInt32, name String, applied_at DateTime('UTC')) ENGINE = ReplacingMergeTree(applied_at) ORDER BY version"

type appliedRow struct {
	Version uint32 `ch:"version"`
}

type countRow struct {
	N uint64 `ch:"n"`
}

// Applied returns the versions recorded in the migrations table.
func Applied(ctx context.Context, e Engine) ([]uint32, error) {
	var rows []appliedRow
	if err := e.Select(ctx, &rows, Query{SQL: "SELECT DISTINCT version FROM " + SchemaMigrations + " ORDER BY version"}); err != nil {
		return nil, fmt.Errorf("read applied migrations: %w", err)
	}
	out := make([]uint32, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Version)
	}
	return out, nil
}

// Migrate applies the migrations not yet recorded, in order, and records
// each once its steps have run. Both services run it at start.
func Migrate(ctx context.Context, e Engine) error { return migrate(ctx, e, nil) }

// migrate is Migrate with each step's SQL passed through rewrite, when not
// nil (cluster.go: replicated engines).
func migrate(ctx context.Context, e Engine, rewrite func(string) string) error {
	if err := e.Exec(ctx, Query{SQL: MigrationsTableSQL}); err != nil {
		return fmt.Errorf("schema: create %s: %w", SchemaMigrations, err)
	}
	applied, err := Applied(ctx, e)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	for _, m := range Migrations {
		if slices.Contains(applied, m.Version) {
			continue
		}
		for _, s := range m.Steps {
			if rewrite != nil {
				s.SQL = rewrite(s.SQL)
			}
			if err := runStep(ctx, e, s); err != nil {
				return fmt.Errorf("schema: migration %d (%s): %w\n%s", m.Version, m.Name, err, s.SQL)
			}
		}
		err := e.Insert(ctx, SchemaMigrations, []string{"version", "name", "applied_at"},
			[][]any{{m.Version, m.Name, time.Now().UTC().Truncate(time.Second)}})
		if err != nil {
			return fmt.Errorf("schema: record migration %d: %w", m.Version, err)
		}
	}
	return nil
}

func runStep(ctx context.Context, e Engine, s Step) error {
	if s.Column == "" {
		return e.Exec(ctx, Query{SQL: s.SQL})
	}
	exists := func() (bool, error) {
		var n []countRow
		err := e.Select(ctx, &n, Query{
			SQL:  "SELECT count() AS n FROM system.columns WHERE database = currentDatabase() AND table = ? AND name = ?",
			Args: []any{s.Table, s.Column},
		})
		return err == nil && len(n) == 1 && n[0].N > 0, err
	}
	if ok, err := exists(); err != nil || ok {
		return err
	}
	err := e.Exec(ctx, Query{SQL: s.SQL})
	if err != nil {
		// Another process may have added it since we looked.
		if ok, _ := exists(); ok {
			return nil
		}
	}
	return err
}
