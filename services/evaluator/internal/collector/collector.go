// Package collector exports the latest snapshot as Prometheus metrics, built
// at scrape time: a municipality, service or SLA that is gone from the
// snapshot is gone from the next scrape.
package collector

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
)

// Snapshotter gives the latest snapshot; engine.Engine is the real one.
type Snapshotter interface{ Latest() *engine.Snapshot }

var (
	level = prometheus.NewDesc("smartcity_maturity_level",
		"Maturity level of the municipality: 0 (no data) to 5 (optimitzat).", []string{"municipality"}, nil)
	passed = prometheus.NewDesc("smartcity_maturity_criterion_passed",
		"1 when the criterion passes, 0 when it fails.", []string{"municipality", "level", "criterion"}, nil)
	value = prometheus.NewDesc("smartcity_maturity_criterion_value",
		"Measured value of the criterion (ratio or count); absent when there is no data.", []string{"municipality", "level", "criterion"}, nil)
	compliance = prometheus.NewDesc("smartcity_sla_compliance_ratio",
		"Share of counted measurements in the current window that meet the SLA target; absent when not measured.", []string{"municipality", "service", "kpi"}, nil)
	objective = prometheus.NewDesc("smartcity_sla_objective_ratio",
		"Share of measurements that must meet the target (the SLA objective).", []string{"municipality", "service", "kpi"}, nil)
	budget = prometheus.NewDesc("smartcity_sla_error_budget_remaining_ratio",
		"Remaining error budget: 1 - (1 - compliance) / (1 - objective); absent when not measured.", []string{"municipality", "service", "kpi"}, nil)
	windowCompliance = prometheus.NewDesc("smartcity_sla_window_compliance_ratio",
		"Share of counted measurements in the last window of business time (1h, 6h, 1d, 3d) that meet the SLA target; absent when no samples.",
		[]string{"municipality", "service", "kpi", "window"}, nil)
	info = prometheus.NewDesc("smartcity_service_info",
		"Catalogued service (always 1), for joins.", []string{"municipality", "service", "area", "delivery", "provider"}, nil)
	lastMeasurement = prometheus.NewDesc("smartcity_service_last_measurement_timestamp_seconds",
		"Event time of the latest counted measurement of the service.", []string{"municipality", "service"}, nil)
	reportingInterval = prometheus.NewDesc("smartcity_service_reporting_interval_seconds",
		"How often the service is expected to report, from the catalogue.", []string{"municipality", "service"}, nil)
	staleThreshold = prometheus.NewDesc("smartcity_service_stale_threshold_seconds",
		"Seconds without a counted measurement after which the service is no longer live: live_intervals times its reporting interval.",
		[]string{"municipality", "service"}, nil)
	openIncidents = prometheus.NewDesc("smartcity_incidents_open",
		"Incidents opened and not resolved at the evaluation instant.", []string{"municipality", "service"}, nil)
	unattributed = prometheus.NewDesc("smartcity_unattributed_measurements",
		"Measurements in the current window not counted: their publisher is neither the service's provider nor the council, or the service is not in the catalogue.",
		[]string{"municipality"}, nil)
	unknown = prometheus.NewDesc("smartcity_unknown_municipality_measurements",
		"Measurements in the current window for municipalities that are not known: their council has published no catalogue event. Stored, not evaluated.",
		nil, nil)
	lastSuccess = prometheus.NewDesc("smartcity_evaluation_last_success_timestamp_seconds",
		"Wall time of the last complete evaluation.", nil, nil)
	window = prometheus.NewDesc("smartcity_evaluation_window_seconds",
		"W: the length of the current window over which compliance and the criteria are judged.", nil, nil)
)

// Collector builds the public metrics from the latest snapshot and the
// criteria configuration, so that alert rules read W and each service's
// stale threshold instead of repeating them.
type Collector struct {
	src Snapshotter
	cfg maturity.Config
}

// New returns a collector over src, evaluated with cfg.
func New(src Snapshotter, cfg maturity.Config) *Collector { return &Collector{src: src, cfg: cfg} }

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{level, passed, value, compliance, objective, budget, windowCompliance,
		info, lastMeasurement, reportingInterval, staleThreshold, openIncidents, unattributed, lastSuccess, window} {
		ch <- d
	}
}

// Collect sends the metrics of the latest snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(window, c.cfg.Window.Seconds())
	s := c.src.Latest()
	if s == nil {
		return
	}
	gauge(lastSuccess, float64(s.Completed.UnixMilli())/1000)
	gauge(unknown, float64(s.UnknownMeasurements))
	for _, m := range s.Names() {
		r := s.Results[m]
		a := &r.Assessment
		gauge(level, float64(a.Level), m)
		gauge(unattributed, float64(r.Unattributed), m)
		for _, cr := range a.Criteria {
			p := 0.0
			if cr.Passed {
				p = 1
			}
			gauge(passed, p, m, cr.LevelName, cr.ID)
			if cr.Value != nil {
				gauge(value, *cr.Value, m, cr.LevelName, cr.ID)
			}
		}
		for _, sla := range a.SLAs {
			gauge(objective, sla.Objective, m, sla.Service, sla.KPI)
			if sla.Compliance != nil {
				gauge(compliance, *sla.Compliance, m, sla.Service, sla.KPI)
			}
			if sla.ErrorBudgetRemaining != nil {
				gauge(budget, *sla.ErrorBudgetRemaining, m, sla.Service, sla.KPI)
			}
			short := r.Short[maturity.SLAKey{Service: sla.Service, KPI: sla.KPI}]
			labels := make([]string, 0, len(short))
			for w := range short {
				labels = append(labels, w)
			}
			sort.Strings(labels)
			for _, w := range labels {
				st := short[w]
				if st.Samples > 0 {
					gauge(windowCompliance, float64(st.Meeting)/float64(st.Samples), m, sla.Service, sla.KPI, w)
				}
			}
		}
		for _, sv := range a.Services {
			gauge(info, 1, m, sv.ID, sv.Area, sv.Delivery, sv.Provider)
			gauge(openIncidents, float64(sv.OpenIncidents), m, sv.ID)
			gauge(reportingInterval, float64(sv.ReportingIntervalSeconds), m, sv.ID)
			gauge(staleThreshold, float64(int64(c.cfg.LiveIntervals)*sv.ReportingIntervalSeconds), m, sv.ID)
			if !sv.LastMeasurement.IsZero() {
				gauge(lastMeasurement, float64(sv.LastMeasurement.UnixMilli())/1000, m, sv.ID)
			}
		}
	}
}

// Evaluations observes evaluation durations and failures.
type Evaluations struct {
	Duration prometheus.Histogram
	Errors   prometheus.Counter
}

// NewEvaluations creates the evaluation metrics.
func NewEvaluations() *Evaluations {
	return &Evaluations{
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "smartcity_evaluation_duration_seconds",
			Help:    "Time of one full evaluation of all municipalities.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}),
		Errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "smartcity_evaluation_errors_total",
			Help: "Periodic evaluations that failed.",
		}),
	}
}

// Evaluated records one periodic evaluation.
func (e *Evaluations) Evaluated(d time.Duration, err error) {
	if err != nil {
		e.Errors.Inc()
		return
	}
	e.Duration.Observe(d.Seconds())
}
