package sim

import (
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

// Day is 24 hours.
const Day = 24 * time.Hour

// Municipality is one simulated municipality: its catalogue and the maturity
// level it is designed to reach with the default thresholds of maturity.md.
type Municipality struct {
	ID   string // municipality id (slug)
	Name string // display name

	// Level is the designed level at the end of a backfill of at least 60
	// days, and while live mode runs on from there. Recent additions that
	// make `adaptive` pass are dated relative to the start instant, so they
	// leave the 90-day adaptation window after 55 to 70 days of live
	// running (the first registration ever is what counts, so a restart
	// does not renew them).
	Level int
	// Fails lists the criteria designed to fail on the next level up (or on
	// level 1 for a level-0 municipality); they are why the level stops where
	// it does.
	Fails []string
	// Flaps marks a municipality that moves between Gestionat and Optimitzat
	// over time: Level is its level while no Dip is inside the current window,
	// and DipFails are the criteria that fail while one is.
	Flaps    bool
	DipFails []string
	// Why explains the design in one or two sentences.
	Why string

	Services []Service
}

// Service is one catalogued service and how it behaves.
type Service struct {
	ID       string
	Name     string
	Area     string
	Delivery string // contract.DeliveryConcession or contract.DeliveryOwn
	Provider string // publisher id of the concession provider; "" for own services
	Interval time.Duration
	OpenData bool

	// Silent services are catalogued but never report.
	Silent bool
	// AddedDaysAgo is 0 for a service registered long before the backfill,
	// or the number of days before the start instant it was first registered.
	AddedDaysAgo int
	// GapShare is the share of reporting slots with no measurement.
	GapShare float64

	KPIs      []KPI
	Incidents *Incidents
}

// Publisher is who publishes the service's measurements and incidents.
func (s *Service) Publisher() string {
	if s.Delivery == contract.DeliveryConcession {
		return s.Provider
	}
	return contract.Council
}

// Shape is a daily pattern of a KPI, in local time (Europe/Madrid).
type Shape int

// Daily patterns.
const (
	Flat    Shape = iota // no daily pattern
	Rush                 // dips in the morning and evening rush hours
	Daytime              // high in the working day, low at night, lower at weekends
	Demand               // follows water demand: peaks in the morning and evening
)

// KPI is one measured indicator of a service and, usually, its SLA.
type KPI struct {
	ID        string
	Name      string
	Unit      string
	Direction string // contract.HigherIsBetter or contract.LowerIsBetter
	Target    float64
	Objective float64

	// NoSLA KPIs are measured but have no SLA.
	NoSLA bool
	// SLAAddedDaysAgo is 0 when the SLA is defined together with the
	// service, or the number of days before the start instant it was first
	// defined.
	SLAAddedDaysAgo int

	// Value model: Base + Spread * shape + Noise * N(0,1), clamped to
	// [Min, Max] and rounded to Decimals.
	Base, Spread, Noise float64
	Min, Max            float64
	Decimals            int
	Shape               Shape

	// FailShare is the share of measurements that miss the target; the rest
	// always meet it.
	FailShare float64
	// Dip is a recurring episode with a higher FailShare.
	Dip *Dip
}

// Dip is a recurring degradation: from Offset after the Unix epoch, every
// Every, for Length, FailShare of the measurements miss the target.
type Dip struct {
	Every, Length, Offset time.Duration
	FailShare             float64
}

// In reports whether t is inside a dip episode.
func (d *Dip) In(t time.Time) bool {
	if d == nil {
		return false
	}
	x := (time.Duration(t.UnixNano()) - d.Offset) % d.Every
	if x < 0 {
		x += d.Every
	}
	return x < d.Length
}

// LastStart is the start of the latest episode that starts at or before t.
func (d *Dip) LastStart(t time.Time) time.Time {
	x := (time.Duration(t.UnixNano()) - d.Offset) % d.Every
	if x < 0 {
		x += d.Every
	}
	return t.Add(-x)
}

// Incidents describes a service's incidents. Slot j opens at
// j*EveryHours (plus jitter) when a hashed draw is below Presence. Slots
// with (j + a per-service offset) divisible by LateEvery are resolved after
// their deadline; the rest well before it. With LateEvery*EveryHours of at
// least 30 days, at most one incident per service per window is late.
type Incidents struct {
	EveryHours int
	Presence   float64
	LateEvery  int
}

// Resolution targets by priority, in seconds.
var resolutionTarget = map[string]int64{
	"critical": 4 * 3600,
	"high":     24 * 3600,
	"medium":   72 * 3600,
	"low":      7 * 24 * 3600,
}

// maxIncidentSpan bounds how long after opening an incident is resolved.
const maxIncidentSpan = 7 * 24 * time.Hour * 5 / 2

// Areas of service used by the simulator.
const (
	AreaEnvironment     = "environment"
	AreaLighting        = "lighting"
	AreaWater           = "water"
	AreaMobility        = "mobility"
	AreaParks           = "parks"
	AreaCitizenServices = "citizen-services"
	AreaEnergy          = "energy"
)
