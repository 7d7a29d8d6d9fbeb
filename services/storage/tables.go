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
// EventColumns.
var (
	MeasurementColumns = []string{"municipality", "publisher", "id", "service", "kpi", "value", "time", "time_ms", "time_ns",
		"source", "stream_seq", "ingested_at", "version"}
	CatalogColumns = []string{"municipality", "publisher", "id", "type", "service", "kpi", "time", "time_ms", "time_ns",
		"name", "area", "delivery", "provider", "reporting_interval_seconds", "open_data", "unit", "direction", "target", "objective",
		"source", "stream_seq", "ingested_at", "version"}
	IncidentColumns = []string{"municipality", "publisher", "id", "type", "service", "incident", "priority", "resolution_target_seconds",
		"time", "time_ms", "time_ns", "source", "stream_seq", "ingested_at", "version"}
)

// ColumnsOf returns the columns EventColumns fills for table.
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

// EventColumns gathers accepted events into the columns of their tables
// (ColumnsOf), one typed slice per column, for one InsertColumns per
// table: the ingest's inserts of thousands of events box no value.
type EventColumns struct {
	measurements measurementColumns
	catalog      catalogColumns
	incidents    incidentColumns
}

// The columns every event table starts and ends with.
type (
	envelopeColumns struct{ municipality, publisher, id []string }
	timeColumns     struct {
		time []time.Time
		ms   []uint16
		ns   []uint32
	}
	streamColumns struct {
		source       []string
		seq, version []uint64
		ingested     []time.Time
	}
)

func (c *envelopeColumns) add(e *contract.Event) {
	c.municipality = append(c.municipality, e.Municipality)
	c.publisher = append(c.publisher, e.Publisher)
	c.id = append(c.id, e.ID)
}

func (c *timeColumns) add(at time.Time) {
	t, ms, ns := TimeParts(at)
	c.time, c.ms, c.ns = append(c.time, t), append(c.ms, ms), append(c.ns, ns)
}

func (c *streamColumns) add(e *contract.Event, seq uint64, ingestedAt time.Time) {
	c.source = append(c.source, e.Source)
	c.seq = append(c.seq, seq)
	c.ingested = append(c.ingested, ingestedAt.UTC())
	c.version = append(c.version, Version(seq))
}

type measurementColumns struct {
	envelopeColumns
	service, kpi []string
	value        []float64
	timeColumns
	streamColumns
}

func (c *measurementColumns) add(e *contract.Event, seq uint64, ingestedAt time.Time, d *contract.KPIMeasured) {
	c.envelopeColumns.add(e)
	c.service, c.kpi, c.value = append(c.service, d.Service), append(c.kpi, d.KPI), append(c.value, d.Value)
	c.timeColumns.add(e.Time)
	c.streamColumns.add(e, seq, ingestedAt)
}

func (c *measurementColumns) values() []any {
	return []any{c.municipality, c.publisher, c.id, c.service, c.kpi, c.value, c.time, c.ms, c.ns,
		c.source, c.seq, c.ingested, c.version}
}

type catalogColumns struct {
	envelopeColumns
	typ, service, kpi []string
	timeColumns
	name, area, delivery, provider []string
	interval                       []uint32
	open                           []uint8
	unit, direction                []string
	target, objective              []float64
	streamColumns
}

func (c *catalogColumns) values() []any {
	return []any{c.municipality, c.publisher, c.id, c.typ, c.service, c.kpi, c.time, c.ms, c.ns,
		c.name, c.area, c.delivery, c.provider, c.interval, c.open, c.unit, c.direction, c.target, c.objective,
		c.source, c.seq, c.ingested, c.version}
}

// add appends a catalogue event's row; the fields its type has not are
// empty.
func (c *catalogColumns) add(e *contract.Event, seq uint64, ingestedAt time.Time, service, kpi string, x catalogFields) {
	c.envelopeColumns.add(e)
	c.typ, c.service, c.kpi = append(c.typ, e.Type), append(c.service, service), append(c.kpi, kpi)
	c.timeColumns.add(e.Time)
	c.name, c.area = append(c.name, x.name), append(c.area, x.area)
	c.delivery, c.provider = append(c.delivery, x.delivery), append(c.provider, x.provider)
	c.interval, c.open = append(c.interval, x.interval), append(c.open, x.open)
	c.unit, c.direction = append(c.unit, x.unit), append(c.direction, x.direction)
	c.target, c.objective = append(c.target, x.target), append(c.objective, x.objective)
	c.streamColumns.add(e, seq, ingestedAt)
}

type catalogFields struct {
	name, area, delivery, provider string
	interval                       uint32
	open                           uint8
	unit, direction                string
	target, objective              float64
}

type incidentColumns struct {
	envelopeColumns
	typ, service, incident, priority []string
	target                           []uint32
	timeColumns
	streamColumns
}

func (c *incidentColumns) values() []any {
	return []any{c.municipality, c.publisher, c.id, c.typ, c.service, c.incident, c.priority, c.target,
		c.time, c.ms, c.ns, c.source, c.seq, c.ingested, c.version}
}

func (c *incidentColumns) add(e *contract.Event, seq uint64, ingestedAt time.Time, service, incident, priority string, target uint32) {
	c.envelopeColumns.add(e)
	c.typ, c.service = append(c.typ, e.Type), append(c.service, service)
	c.incident, c.priority, c.target = append(c.incident, incident), append(c.priority, priority), append(c.target, target)
	c.timeColumns.add(e.Time)
	c.streamColumns.add(e, seq, ingestedAt)
}

// Add appends an accepted event to its table's columns. seq is its
// main-stream sequence and ingestedAt when it was accepted.
func (b *EventColumns) Add(e *contract.Event, seq uint64, ingestedAt time.Time) error {
	switch d := e.Data.(type) {
	case *contract.KPIMeasured:
		b.measurements.add(e, seq, ingestedAt, d)
	case *contract.ServiceRegistered:
		var open uint8
		if d.OpenData {
			open = 1
		}
		b.catalog.add(e, seq, ingestedAt, d.Service, "", catalogFields{name: d.Name, area: d.Area, delivery: d.Delivery,
			provider: d.Provider, interval: uint32(d.ReportingIntervalSeconds), open: open})
	case *contract.ServiceRetired:
		b.catalog.add(e, seq, ingestedAt, d.Service, "", catalogFields{})
	case *contract.SLADefined:
		b.catalog.add(e, seq, ingestedAt, d.Service, d.KPI, catalogFields{name: d.Name, unit: d.Unit, direction: d.Direction,
			target: d.Target, objective: d.Objective})
	case *contract.IncidentOpened:
		b.incidents.add(e, seq, ingestedAt, d.Service, d.Incident, d.Priority, uint32(d.ResolutionTargetSeconds))
	case *contract.IncidentResolved:
		b.incidents.add(e, seq, ingestedAt, d.Service, d.Incident, "", 0)
	default:
		return fmt.Errorf("event %s of type %s is not stored", e.ID, e.Type)
	}
	return nil
}

// Values returns the columns of table (ColumnsOf), as InsertColumns takes
// them.
func (b *EventColumns) Values(table string) []any {
	switch table {
	case Measurements:
		return b.measurements.values()
	case Catalog:
		return b.catalog.values()
	case Incidents:
		return b.incidents.values()
	}
	return nil
}
