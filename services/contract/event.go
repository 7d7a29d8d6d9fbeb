package contract

import (
	"time"
)

// SpecVersion is the only CloudEvents version accepted.
const SpecVersion = "1.0"

// MaxMessageSize is the largest accepted message, in bytes (64 KiB).
const MaxMessageSize = 64 * 1024

// Council is the publisher id reserved for a municipality's own council.
const Council = "council"

// Event types of contract v1.
const (
	TypeServiceRegistered = "cat.smartcity.service.registered.v1"
	TypeServiceRetired    = "cat.smartcity.service.retired.v1"
	TypeSLADefined        = "cat.smartcity.sla.defined.v1"
	TypeKPIMeasured       = "cat.smartcity.kpi.measured.v1"
	TypeIncidentOpened    = "cat.smartcity.incident.opened.v1"
	TypeIncidentResolved  = "cat.smartcity.incident.resolved.v1"
	// TypeMaturityChanged is published by the evaluator, outside smartcity.>.
	TypeMaturityChanged = "cat.smartcity.maturity.changed.v1"
)

// Kind is the last token of a subject: which family of events travels on it.
type Kind string

// Kinds of subject.
const (
	KindCatalog     Kind = "catalog"
	KindMeasurement Kind = "measurement"
	KindIncident    Kind = "incident"
)

// KindOf returns the subject kind that an event type travels on, and whether
// the type is one of contract v1's inbound types.
func KindOf(eventType string) (Kind, bool) {
	switch eventType {
	case TypeServiceRegistered, TypeServiceRetired, TypeSLADefined:
		return KindCatalog, true
	case TypeKPIMeasured:
		return KindMeasurement, true
	case TypeIncidentOpened, TypeIncidentResolved:
		return KindIncident, true
	}
	return "", false
}

// Types lists the inbound event types in a stable order.
var Types = []string{
	TypeServiceRegistered, TypeServiceRetired, TypeSLADefined,
	TypeKPIMeasured, TypeIncidentOpened, TypeIncidentResolved,
}

// Delivery modes of a service.
const (
	DeliveryConcession = "concession"
	DeliveryOwn        = "own"
)

// SLA directions.
const (
	HigherIsBetter = "higher_is_better"
	LowerIsBetter  = "lower_is_better"
)

// Defaults of optional data fields.
const (
	DefaultReportingIntervalSeconds = 3600
)

// Event is a validated event: the envelope plus exactly one typed data value.
type Event struct {
	ID              string
	Source          string
	Type            string
	Time            time.Time
	Municipality    string
	Publisher       string
	DataContentType string

	// Data is one of *ServiceRegistered, *ServiceRetired, *SLADefined,
	// *KPIMeasured, *IncidentOpened or *IncidentResolved, per Type.
	Data any
}

// Kind is the subject kind of the event's type.
func (e *Event) Kind() Kind {
	k, _ := KindOf(e.Type)
	return k
}

// Subject is the subject the event travels on.
func (e *Event) Subject() string {
	return Subject(e.Municipality, e.Publisher, e.Kind())
}

// ServiceRegistered adds a service to a municipality's catalogue or replaces
// its description.
type ServiceRegistered struct {
	Service                  string `json:"service"`
	Name                     string `json:"name,omitempty"`
	Area                     string `json:"area"`
	Delivery                 string `json:"delivery"`
	Provider                 string `json:"provider,omitempty"`
	ReportingIntervalSeconds int64  `json:"reporting_interval_seconds,omitempty"`
	OpenData                 bool   `json:"open_data"`
}

// ServiceRetired removes a service from the catalogue from the event time on.
type ServiceRetired struct {
	Service string `json:"service"`
}

// SLADefined establishes or replaces the SLA of one KPI of a service.
type SLADefined struct {
	Service   string  `json:"service"`
	KPI       string  `json:"kpi"`
	Name      string  `json:"name,omitempty"`
	Unit      string  `json:"unit,omitempty"`
	Direction string  `json:"direction"`
	Target    float64 `json:"target"`
	Objective float64 `json:"objective"`
}

// Meets reports whether a measured value meets the SLA target.
func (s *SLADefined) Meets(v float64) bool {
	return Meets(s.Direction, s.Target, v)
}

// Meets reports whether value meets target in the given direction.
func Meets(direction string, target, value float64) bool {
	if direction == LowerIsBetter {
		return value <= target
	}
	return value >= target
}

// KPIMeasured is one measurement of a KPI.
type KPIMeasured struct {
	Service string  `json:"service"`
	KPI     string  `json:"kpi"`
	Value   float64 `json:"value"`
}

// IncidentOpened opens an incident on a service.
type IncidentOpened struct {
	Service                 string `json:"service"`
	Incident                string `json:"incident"`
	Priority                string `json:"priority"`
	ResolutionTargetSeconds int64  `json:"resolution_target_seconds"`
}

// IncidentResolved resolves an incident at the event time.
type IncidentResolved struct {
	Service  string `json:"service"`
	Incident string `json:"incident"`
}

// Priorities of an incident.
var Priorities = []string{"low", "medium", "high", "critical"}

// MaturityChanged is the data of a level-change event published by the
// evaluator on assessment.<municipality>.
type MaturityChanged struct {
	Municipality string    `json:"municipality"`
	From         int       `json:"from"`
	To           int       `json:"to"`
	FromName     string    `json:"from_name"`
	ToName       string    `json:"to_name"`
	EvaluatedAt  time.Time `json:"evaluated_at"`
	Failing      []string  `json:"failing_criteria"`
}
