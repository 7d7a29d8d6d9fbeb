// Package apiv1 holds the JSON types of the evaluator's HTTP API, version 1:
// the evaluator serves them and clients such as kpictl decode them, so the
// two cannot drift apart. It has no dependencies beyond the standard
// library.
package apiv1

import (
	"net/url"
	"time"
)

// Paths of the API.
const (
	// MunicipalitiesPath lists every known municipality (List).
	MunicipalitiesPath = "/api/v1/municipalities"
)

// AssessmentPath is the path of one municipality's assessment (Assessment).
func AssessmentPath(municipality string) string {
	return MunicipalitiesPath + "/" + url.PathEscape(municipality) + "/assessment"
}

// Bounds of ?at= on the assessment: instants before EarliestAt, or more
// than MaxAhead after the evaluator's clock, are refused with 400.
var EarliestAt = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// MaxAhead is how far past the evaluator's clock ?at= may be.
const MaxAhead = 24 * time.Hour

// List is the answer of GET /api/v1/municipalities.
type List struct {
	EvaluatedAt    time.Time `json:"evaluated_at"`
	Municipalities []Summary `json:"municipalities"`
}

// Summary is one municipality in the list.
type Summary struct {
	Municipality string    `json:"municipality"`
	Level        int       `json:"level"`
	LevelName    string    `json:"level_name"`
	EvaluatedAt  time.Time `json:"evaluated_at"`
}

// Assessment is the verdict on one municipality at one instant: the answer
// of GET /api/v1/municipalities/{municipality}/assessment.
type Assessment struct {
	Municipality string      `json:"municipality"`
	At           time.Time   `json:"at"`
	Level        int         `json:"level"`
	LevelName    string      `json:"level_name"`
	Criteria     []Criterion `json:"criteria"` // every criterion, in the order of the maturity model
	Missing      []Criterion `json:"missing"`  // criteria failing on level Level+1; empty at level 5
	SLAs         []SLA       `json:"slas"`     // sorted by service, then kpi
	Services     []Service   `json:"services"` // sorted by id
	// WindowSeconds is W, the length of the current window C.
	WindowSeconds int64 `json:"window_seconds"`
}

// Criterion is the verdict on one criterion.
//
// Value is the measured quantity, nil when there is no data (a ratio whose
// denominator is zero): a count for pilot (services reporting in C),
// areas_collaborating, areas_integrated and cross_cutting (areas(C)),
// external_partner and external_collaboration (external(C)) and adaptive
// (new services plus new SLAs in A); a share for services_integrated,
// sla_coverage_concession, sla_coverage_own, sla_measured, realtime,
// incident_response (on time among due in C), integral_coverage (services
// reporting in C and with an SLA among catalogued ones), service_quality
// (met among measured in C) and open_data; and for continuous_improvement the
// mean compliance in C minus the mean in P over the SLAs measured in both.
type Criterion struct {
	Level         int      `json:"level"`
	LevelName     string   `json:"level_name"`
	ID            string   `json:"id"`
	Passed        bool     `json:"passed"`
	Value         *float64 `json:"value"`
	Threshold     float64  `json:"threshold"`      // the main threshold Value is compared with
	ThresholdText string   `json:"threshold_text"` // every condition, e.g. ">= 0.90, with >= 1 concession service"
	Explanation   string   `json:"explanation"`    // one line for a city manager
}

// SLA is the state of one SLA in force at T.
type SLA struct {
	Service   string  `json:"service"`
	KPI       string  `json:"kpi"`
	Name      string  `json:"name"`
	Unit      string  `json:"unit"`
	Direction string  `json:"direction"`
	Target    float64 `json:"target"`
	Objective float64 `json:"objective"`
	SamplesC  int     `json:"samples_c"`
	SamplesP  int     `json:"samples_p"`
	// Compliance is the compliance in C, nil when not measured in C.
	Compliance *float64 `json:"compliance"`
	// ComplianceP is the compliance in P, nil when not measured in P.
	ComplianceP *float64 `json:"compliance_p"`
	// ErrorBudgetRemaining is 1 - (1-compliance)/(1-objective); with objective
	// 1 it is 1 when compliance is 1, else 0. Nil when not measured in C.
	// Negative when the budget is overspent.
	ErrorBudgetRemaining *float64 `json:"error_budget_remaining"`
	Met                  bool     `json:"met"` // met in C
}

// Service is the state of one catalogued service.
type Service struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	Area            string    `json:"area"`
	Delivery        string    `json:"delivery"`
	Provider        string    `json:"provider"`
	OpenData        bool      `json:"open_data"`
	HasSLA          bool      `json:"has_sla"`
	Reporting       bool      `json:"reporting"` // at least one counted measurement in C
	Live            bool      `json:"live"`
	MeasurementsC   int       `json:"measurements_c"`
	LastMeasurement time.Time `json:"last_measurement,omitzero"` // zero (omitted) when none
	OpenIncidents   int       `json:"open_incidents"`            // opened before T, unresolved at T
	// ReportingIntervalSeconds is how often the service is expected to report.
	ReportingIntervalSeconds int64 `json:"reporting_interval_seconds"`
}

// Error is the body of every answer other than 200.
type Error struct {
	Error string `json:"error"`
}
