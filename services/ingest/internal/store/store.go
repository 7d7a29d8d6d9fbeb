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
