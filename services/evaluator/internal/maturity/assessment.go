package maturity

import (
	"encoding/json"
	"time"
)

// MaxLevel is the highest maturity level.
const MaxLevel = 5

var levelNames = [MaxLevel + 1]string{"sense_dades", "puntual", "collaboracio", "estrategia", "gestionat", "optimitzat"}

// LevelName returns the ASCII name of a level: "sense_dades" for 0, then
// "puntual", "collaboracio", "estrategia", "gestionat" and "optimitzat".
// It returns "" for a level out of range.
func LevelName(level int) string {
	if level < 0 || level > MaxLevel {
		return ""
	}
	return levelNames[level]
}

// Assessment is the verdict on one municipality at one instant.
type Assessment struct {
	Municipality string          `json:"municipality"`
	At           time.Time       `json:"at"`
	Window       time.Duration   `json:"-"` // W; marshalled as window_seconds
	Level        int             `json:"level"`
	LevelName    string          `json:"level_name"`
	Criteria     []Criterion     `json:"criteria"` // every criterion, in the order of maturity.md
	Missing      []Criterion     `json:"missing"`  // criteria failing on level Level+1; empty at MaxLevel
	SLAs         []SLAResult     `json:"slas"`     // sorted by service, then kpi
	Services     []ServiceResult `json:"services"` // sorted by id
}

// MarshalJSON writes the assessment with W as window_seconds.
func (a Assessment) MarshalJSON() ([]byte, error) {
	type plain Assessment
	return json.Marshal(struct {
		plain
		WindowSeconds int64 `json:"window_seconds"`
	}{plain(a), int64(a.Window / time.Second)})
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

// SLAResult is the state of one SLA in force at T.
type SLAResult struct {
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

// ServiceResult is the state of one catalogued service.
type ServiceResult struct {
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
