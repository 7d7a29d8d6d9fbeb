package apiv1

import (
	"net/url"
	"time"
)

// ReportPath is the path of one municipality's SLA report for a calendar
// month written yyyy-mm (Report).
func ReportPath(municipality, month string) string {
	return MunicipalitiesPath + "/" + url.PathEscape(municipality) + "/reports/" + url.PathEscape(month)
}

// Formats of the report: ?format= takes the short name, Accept the media
// type.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
	FormatHTML = "html"

	MediaJSON = "application/json"
	MediaCSV  = "text/csv"
	MediaHTML = "text/html"
)

// EarliestMonth is the first month a report can cover; the last is the
// current month in the report's time zone.
const EarliestMonth = "2000-01"

// Report is a municipality's monthly SLA report: every SLA of every
// provider over one calendar month of the municipality's time zone,
// judged as an evaluation at the end of the month with a window as long as
// the month would judge it.
type Report struct {
	Municipality string `json:"municipality"`
	Month        string `json:"month"`     // yyyy-mm
	TimeZone     string `json:"time_zone"` // IANA name, e.g. Europe/Madrid
	// From is the first instant of the month in TimeZone; To the end of
	// the period, excluded: the first instant of the next month, or, for
	// the current month, the evaluator's clock when the report was made.
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Complete is false for the current month, cut at To.
	Complete bool `json:"complete"`
	// MinSamples is how many samples an SLA needs in the month to be
	// measured (min_samples of the criteria).
	MinSamples int              `json:"min_samples"`
	Providers  []ReportProvider `json:"providers"` // concession providers by id, then council
	// RetiredServices were catalogued during the month and retired before
	// To; their SLAs are no longer in force and are not judged.
	RetiredServices []RetiredService `json:"retired_services"`
}

// ReportProvider is one provider and its SLAs: a concession provider with
// the SLAs of the services it provides, or council with those of the own
// services.
type ReportProvider struct {
	Provider    string      `json:"provider"` // publisher id; council for own services
	Delivery    string      `json:"delivery"` // concession or own
	Met         int         `json:"met"`
	NotMet      int         `json:"not_met"`
	NotMeasured int         `json:"not_measured"`
	SLAs        []ReportSLA `json:"slas"` // sorted by service, then kpi
}

// ReportSLA is one SLA over the month: the definition in force at To, and
// the counted samples judged against its target and objective.
type ReportSLA struct {
	Service     string  `json:"service"`
	ServiceName string  `json:"service_name"`
	Area        string  `json:"area"`
	KPI         string  `json:"kpi"`
	Name        string  `json:"name"`
	Unit        string  `json:"unit"`
	Direction   string  `json:"direction"`
	Target      float64 `json:"target"`
	Objective   float64 `json:"objective"`
	// DefinedAt is the event time of the definition in force at To; one
	// after From means the SLA was redefined (or first defined) during
	// the month, and this definition judges the whole month.
	DefinedAt time.Time `json:"defined_at"`
	Samples   int       `json:"samples"` // counted samples in [From, To)
	Meeting   int       `json:"meeting"` // of those, meeting the target
	// Compliance is Meeting / Samples, nil when not measured.
	Compliance *float64 `json:"compliance"`
	Measured   bool     `json:"measured"` // Samples >= MinSamples
	Met        bool     `json:"met"`      // measured and Compliance >= Objective
	// BreachDays are the days (yyyy-mm-dd) whose compliance fell below the
	// objective.
	BreachDays []string    `json:"breach_days"`
	Days       []ReportDay `json:"days"` // every day of the period, in order
}

// ReportDay is one SLA on one day of the month, in the report's time zone
// (23 or 25 hours on the days the clocks change).
type ReportDay struct {
	Date    string `json:"date"` // yyyy-mm-dd
	Samples int    `json:"samples"`
	Meeting int    `json:"meeting"`
	// Compliance is Meeting / Samples, nil without samples; no minimum
	// applies to a day.
	Compliance *float64 `json:"compliance"`
	Breach     bool     `json:"breach"` // Compliance < the objective
}

// RetiredService is a service retired during the month.
type RetiredService struct {
	Service   string    `json:"service"`
	Name      string    `json:"name"`
	Provider  string    `json:"provider"`
	RetiredAt time.Time `json:"retired_at"`
}
