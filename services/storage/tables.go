package storage

import (
	"fmt"
	"math"
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

// The tables (migrations/*.sql and Migrations have their columns).
const (
	// Measurements holds kpi.measured events.
	Measurements = "measurements"
	// Catalog holds service.registered, service.retired and sla.defined events.
	Catalog = "catalog"
	// Incidents holds incident.opened and incident.resolved events.
	Incidents = "incidents"
	// Duplicates lists identities stored twice by racing replicas until merged.
	Duplicates = "duplicates"
	// MaturityChanges is the level history the evaluator writes.
	MaturityChanges = "maturity_changes"
	// SchemaMigrations records the migrations applied.
	SchemaMigrations = "schema_migrations"
)

// EventTables are the tables of accepted events, where an identity is
// stored at most once.
var EventTables = []string{Measurements, Catalog, Incidents}

// Columns the ingest service writes, in the order of the values of
// EventRow.
var (
	MeasurementColumns = []string{"municipality", "publisher", "id", "service", "kpi", "value", "time", "time_ms", "time_ns",
		"source", "stream_seq", "ingested_at", "version"}
	CatalogColumns = []string{"municipality", "publisher", "id", "type", "service", "kpi", "time", "time_ms", "time_ns",
		"name", "area", "delivery", "provider", "reporting_interval_seconds", "open_data", "unit", "direction", "target", "objective",
		"source", "stream_seq", "ingested_at", "version"}
	IncidentColumns = []string{"municipality", "publisher", "id", "type", "service", "incident", "priority", "resolution_target_seconds",
		"time", "time_ms", "time_ns", "source", "stream_seq", "ingested_at", "version"}
)

// ColumnsOf returns the columns EventRow fills for table.
func ColumnsOf(table string) []string {
	switch table {
	case Measurements:
		return MeasurementColumns
	case Catalog:
		return CatalogColumns
	case Incidents:
		return IncidentColumns
	}
	return nil
}

// Version makes the lowest stream sequence the highest version, so that
// ReplacingMergeTree keeps the first accepted copy of an identity.
func Version(seq uint64) uint64 { return math.MaxUint64 - seq }

// TimeParts splits an event time into the stored columns: whole seconds
// (time), milliseconds (time_ms, kept for readers of before time_ns) and
// nanoseconds (time_ns) within the second.
func TimeParts(t time.Time) (time.Time, uint16, uint32) {
	t = t.UTC()
	ns := t.Nanosecond()
	return t.Truncate(time.Second), uint16(ns / 1e6), uint32(ns)
}

// EventRow returns the table of an accepted event and its row, the values
// of ColumnsOf(table) in order. seq is its main-stream sequence and
// ingestedAt when it was accepted.
func EventRow(e *contract.Event, seq uint64, ingestedAt time.Time) (string, []any, error) {
	t, ms, ns := TimeParts(e.Time)
	ingested, version := ingestedAt.UTC(), Version(seq)
	switch d := e.Data.(type) {
	case *contract.KPIMeasured:
		return Measurements, []any{e.Municipality, e.Publisher, e.ID, d.Service, d.KPI, d.Value, t, ms, ns,
			e.Source, seq, ingested, version}, nil
	case *contract.ServiceRegistered:
		open := uint8(0)
		if d.OpenData {
			open = 1
		}
		return Catalog, []any{e.Municipality, e.Publisher, e.ID, e.Type, d.Service, "", t, ms, ns,
			d.Name, d.Area, d.Delivery, d.Provider, uint32(d.ReportingIntervalSeconds), open, "", "", 0.0, 0.0,
			e.Source, seq, ingested, version}, nil
	case *contract.ServiceRetired:
		return Catalog, []any{e.Municipality, e.Publisher, e.ID, e.Type, d.Service, "", t, ms, ns,
			"", "", "", "", uint32(0), uint8(0), "", "", 0.0, 0.0,
			e.Source, seq, ingested, version}, nil
	case *contract.SLADefined:
		return Catalog, []any{e.Municipality, e.Publisher, e.ID, e.Type, d.Service, d.KPI, t, ms, ns,
			d.Name, "", "", "", uint32(0), uint8(0), d.Unit, d.Direction, d.Target, d.Objective,
			e.Source, seq, ingested, version}, nil
	case *contract.IncidentOpened:
		return Incidents, []any{e.Municipality, e.Publisher, e.ID, e.Type, d.Service, d.Incident, d.Priority,
			uint32(d.ResolutionTargetSeconds), t, ms, ns, e.Source, seq, ingested, version}, nil
	case *contract.IncidentResolved:
		return Incidents, []any{e.Municipality, e.Publisher, e.ID, e.Type, d.Service, d.Incident, "",
			uint32(0), t, ms, ns, e.Source, seq, ingested, version}, nil
	}
	return "", nil, fmt.Errorf("event %s of type %s is not stored", e.ID, e.Type)
}
