// Package maturity holds the maturity rules of the evaluator as pure functions:
// it places one municipality on the five levels of maturity.md from plain
// structs that the ClickHouse reader fills, and explains every verdict.
package maturity

import "time"

// Delivery modes of a service.
const (
	DeliveryConcession = "concession"
	DeliveryOwn        = "own"
)

// Council is the publisher id reserved for the municipality's own council.
const Council = "council"

// Directions of an SLA.
const (
	HigherIsBetter = "higher_is_better"
	LowerIsBetter  = "lower_is_better"
)

// DefaultReportingInterval applies to a service whose ReportingInterval is
// not positive, as the event contract does when the field is absent.
const DefaultReportingInterval = time.Hour

// Service is a service catalogued at T (registered and not retired at T).
type Service struct {
	ID, Name, Area    string
	Delivery          string // "concession" or "own"
	Provider          string // publisher id of the provider; "council" for own services
	ReportingInterval time.Duration
	OpenData          bool
	FirstRegistered   time.Time // time of the first registration ever of this service id
	MeasurementsC     int       // counted measurements (any KPI) in window C
	LastMeasurement   time.Time // latest counted measurement with time < T; zero if none
}

// WindowStats counts counted (attributed, deduplicated) samples of one SLA in one window.
type WindowStats struct {
	Samples int // samples(k, X)
	Meeting int // of those, how many meet the target of the SLA in force at T
}

// SLA is the SLA in force at T for one (service, kpi) of a catalogued service.
type SLA struct {
	Service, KPI, Name, Unit string
	Direction                string // "higher_is_better" or "lower_is_better"
	Target, Objective        float64
	FirstDefined             time.Time // first definition ever of this (service, kpi)
	C, P                     WindowStats
}

// Incident is a counted incident (already attributed; opened before T).
type Incident struct {
	Service, ID, Priority string
	OpenedAt, Deadline    time.Time // Deadline = OpenedAt + resolution_target_seconds
	ResolvedAt            time.Time // earliest counted resolution with time < T; zero if unresolved at T
}

// Input is everything the rules need for one municipality at instant At.
type Input struct {
	Municipality string
	At           time.Time
	Services     []Service
	SLAs         []SLA
	Incidents    []Incident
}

// SLAKey names one SLA of a municipality.
type SLAKey struct{ Service, KPI string }

// ShortWindow is a recent window of business time, [T-D, T), for which SLA
// compliance is also computed (error-budget burn-rate alerts).
type ShortWindow struct {
	Label string
	D     time.Duration
}

// ShortWindows are the short windows, shortest first; Label is the value of
// the metric's window label.
var ShortWindows = []ShortWindow{{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"1d", 24 * time.Hour}, {"3d", 72 * time.Hour}}
