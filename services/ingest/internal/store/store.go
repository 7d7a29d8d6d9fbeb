// Package store writes accepted events to ClickHouse and finds which
// identities are already stored.
package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/chconn"
)

// Identity is what makes an event unique.
type Identity struct{ Municipality, Publisher, ID string }

// Row is an accepted event with where it came from in the stream.
type Row struct {
	Event      *contract.Event
	StreamSeq  uint64
	IngestedAt time.Time
}

// Identity of the row's event.
func (r *Row) Identity() Identity {
	return Identity{r.Event.Municipality, r.Event.Publisher, r.Event.ID}
}

// Store is the ClickHouse side of the ingest service.
type Store struct {
	c *chconn.Conn
}

// New returns a store on c.
func New(c *chconn.Conn) *Store { return &Store{c: c} }

// Ping checks the server answers.
func (s *Store) Ping(ctx context.Context) error { return s.c.Ping(ctx) }

var tables = []string{"measurements", "catalog", "incidents"}

// Existing returns which of ids are already stored, in any table.
func (s *Store) Existing(ctx context.Context, ids []Identity) (map[Identity]bool, error) {
	found := make(map[Identity]bool)
	if len(ids) == 0 {
		return found, nil
	}
	tbl, err := identityTable(ids)
	if err != nil {
		return nil, err
	}
	q := ""
	for i, t := range tables {
		if i > 0 {
			q += " UNION ALL "
		}
		q += fmt.Sprintf("SELECT municipality, publisher, id FROM %s WHERE (municipality, publisher, id) IN (SELECT m, p, i FROM batch_ids)", s.c.Table(t))
	}
	rows, err := s.c.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), q)
	if err != nil {
		return nil, fmt.Errorf("look up stored identities: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id Identity
		if err := rows.Scan(&id.Municipality, &id.Publisher, &id.ID); err != nil {
			return nil, fmt.Errorf("look up stored identities: %w", err)
		}
		found[id] = true
	}
	return found, rows.Err()
}

// identityTable holds ids as an external table for IN look-ups.
func identityTable(ids []Identity) (*ext.Table, error) {
	tbl, err := ext.NewTable("batch_ids",
		ext.Column("m", column.Type("String")),
		ext.Column("p", column.Type("String")),
		ext.Column("i", column.Type("String")))
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := tbl.Append(id.Municipality, id.Publisher, id.ID); err != nil {
			return nil, err
		}
	}
	return tbl, nil
}

// Converge finds measurements of ids stored more than once (two replicas
// handled two copies at the same moment), records them in the duplicates
// table, so readers deduplicate meanwhile, merges their partitions so one
// row per identity remains, and marks them resolved. It returns how many
// identities were stored twice.
func (s *Store) Converge(ctx context.Context, ids []Identity) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	tbl, err := identityTable(ids)
	if err != nil {
		return 0, err
	}
	q := fmt.Sprintf(`SELECT municipality, publisher, id, groupUniqArray(toYYYYMM(time)) FROM %s
		WHERE (municipality, publisher, id) IN (SELECT m, p, i FROM batch_ids)
		GROUP BY municipality, publisher, id HAVING count() > 1`, s.c.Table("measurements"))
	rows, err := s.c.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), q)
	if err != nil {
		return 0, fmt.Errorf("look for identities stored twice: %w", err)
	}
	var dups []Identity
	parts := map[uint32]bool{}
	for rows.Next() {
		var id Identity
		var ps []uint32
		if err := rows.Scan(&id.Municipality, &id.Publisher, &id.ID, &ps); err != nil {
			rows.Close()
			return 0, fmt.Errorf("look for identities stored twice: %w", err)
		}
		dups = append(dups, id)
		for _, p := range ps {
			parts[p] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(dups) == 0 {
		return 0, err
	}
	if err := s.markDuplicates(ctx, dups, 0); err != nil {
		return 0, err
	}
	for p := range parts {
		if err := s.c.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s PARTITION %d FINAL", s.c.Table("measurements"), p)); err != nil {
			return 0, fmt.Errorf("merge partition %d: %w", p, err)
		}
	}
	return len(dups), s.markDuplicates(ctx, dups, 1)
}

func (s *Store) markDuplicates(ctx context.Context, ids []Identity, resolved uint8) error {
	b, err := s.c.PrepareBatch(s.c.InsertContext(ctx), fmt.Sprintf(
		"INSERT INTO %s (municipality, publisher, id, detected_at, resolved, version)", s.c.Table("duplicates")))
	if err != nil {
		return fmt.Errorf("record duplicates: %w", err)
	}
	now := time.Now().UTC()
	for _, id := range ids {
		if err := b.Append(id.Municipality, id.Publisher, id.ID, now.Truncate(time.Second), resolved, uint64(now.UnixNano())+uint64(resolved)); err != nil {
			return fmt.Errorf("record duplicates: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("record duplicates: %w", err)
	}
	return nil
}

// Insert writes rows with one batch insert per table, and returns once the
// server has committed them.
func (s *Store) Insert(ctx context.Context, rows []Row) error {
	var m, c, i []Row
	for _, r := range rows {
		switch r.Event.Kind() {
		case contract.KindMeasurement:
			m = append(m, r)
		case contract.KindCatalog:
			c = append(c, r)
		case contract.KindIncident:
			i = append(i, r)
		}
	}
	ctx = s.c.InsertContext(ctx)
	if err := s.insert(ctx, "measurements", measurementCols, m, appendMeasurement); err != nil {
		return err
	}
	if err := s.insert(ctx, "catalog", catalogCols, c, appendCatalog); err != nil {
		return err
	}
	return s.insert(ctx, "incidents", incidentCols, i, appendIncident)
}

const (
	measurementCols = "municipality, publisher, id, service, kpi, value, time, time_ms, source, stream_seq, ingested_at, version"
	catalogCols     = "municipality, publisher, id, type, service, kpi, time, time_ms, name, area, delivery, provider, reporting_interval_seconds, open_data, unit, direction, target, objective, source, stream_seq, ingested_at, version"
	incidentCols    = "municipality, publisher, id, type, service, incident, priority, resolution_target_seconds, time, time_ms, source, stream_seq, ingested_at, version"
)

type appender interface{ Append(v ...any) error }

func (s *Store) insert(ctx context.Context, table, cols string, rows []Row, add func(appender, *Row) error) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.c.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s (%s)", s.c.Table(table), cols))
	if err != nil {
		return fmt.Errorf("insert into %s: %w", table, err)
	}
	for i := range rows {
		if err := add(b, &rows[i]); err != nil {
			_ = b.Abort()
			return fmt.Errorf("insert into %s: %w", table, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", len(rows), table, err)
	}
	return nil
}

// version makes the lowest stream sequence the highest version, so that
// ReplacingMergeTree keeps the first accepted copy.
func version(seq uint64) uint64 { return math.MaxUint64 - seq }

func timeParts(t time.Time) (time.Time, uint16) {
	t = t.UTC()
	return t.Truncate(time.Second), uint16(t.Nanosecond() / 1e6)
}

func appendMeasurement(b appender, r *Row) error {
	e := r.Event
	d := e.Data.(*contract.KPIMeasured)
	t, ms := timeParts(e.Time)
	return b.Append(e.Municipality, e.Publisher, e.ID, d.Service, d.KPI, d.Value, t, ms,
		e.Source, r.StreamSeq, r.IngestedAt.UTC(), version(r.StreamSeq))
}

func appendCatalog(b appender, r *Row) error {
	e := r.Event
	var (
		service, kpi, name, area, delivery, provider, unit, direction string
		interval                                                      uint32
		open                                                          uint8
		target, objective                                             float64
	)
	switch d := e.Data.(type) {
	case *contract.ServiceRegistered:
		service, name, area, delivery, provider = d.Service, d.Name, d.Area, d.Delivery, d.Provider
		interval = uint32(d.ReportingIntervalSeconds)
		if d.OpenData {
			open = 1
		}
	case *contract.ServiceRetired:
		service = d.Service
	case *contract.SLADefined:
		service, kpi, name, unit, direction = d.Service, d.KPI, d.Name, d.Unit, d.Direction
		target, objective = d.Target, d.Objective
	}
	t, ms := timeParts(e.Time)
	return b.Append(e.Municipality, e.Publisher, e.ID, e.Type, service, kpi, t, ms, name, area, delivery,
		provider, interval, open, unit, direction, target, objective, e.Source, r.StreamSeq,
		r.IngestedAt.UTC(), version(r.StreamSeq))
}

func appendIncident(b appender, r *Row) error {
	e := r.Event
	var service, incident, priority string
	var target uint32
	switch d := e.Data.(type) {
	case *contract.IncidentOpened:
		service, incident, priority, target = d.Service, d.Incident, d.Priority, uint32(d.ResolutionTargetSeconds)
	case *contract.IncidentResolved:
		service, incident = d.Service, d.Incident
	}
	t, ms := timeParts(e.Time)
	return b.Append(e.Municipality, e.Publisher, e.ID, e.Type, service, incident, priority, target, t, ms,
		e.Source, r.StreamSeq, r.IngestedAt.UTC(), version(r.StreamSeq))
}
