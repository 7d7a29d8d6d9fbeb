package collector_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/assoliment/assoliment/services/evaluator/internal/collector"
	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
)

var at = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

type latest struct {
	mu sync.Mutex
	s  *engine.Snapshot
}

func (l *latest) Latest() *engine.Snapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.s
}

func (l *latest) set(s *engine.Snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s = s
}

// snapshot holds municipalities built for the given levels; vic's first
// SLA has short-window stats.
func snapshot(levels map[string]int) *engine.Snapshot {
	s := &engine.Snapshot{At: at, Completed: at.Add(1500 * time.Millisecond), Results: map[string]*engine.Result{}, UnknownMeasurements: 42}
	for m, l := range levels {
		in := maturity.SampleInput(m, l, at)
		r := &engine.Result{Assessment: maturity.Evaluate(maturity.DefaultConfig(), in), Unattributed: 3,
			Short: map[maturity.SLAKey]map[string]maturity.WindowStats{}}
		k := in.SLAs[0]
		r.Short[maturity.SLAKey{Service: k.Service, KPI: k.KPI}] = map[string]maturity.WindowStats{"1h": {Samples: 4, Meeting: 3}, "1d": {Samples: 8, Meeting: 8}}
		s.Results[m] = r
	}
	return s
}

// scrape serves the registry as the evaluator does and returns /metrics.
func scrape(t *testing.T, src collector.Snapshotter) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	evals := collector.NewEvaluations()
	evals.Evaluated(2*time.Second, nil)
	evals.Evaluated(0, errors.New("down"))
	reg.MustRegister(collector.New(src, maturity.DefaultConfig()), evals.Duration, evals.Errors)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	return string(b)
}

// promtool checks the exposition: no errors, no warnings.
func promtool(t *testing.T, metrics string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is needed (Debian package prometheus; `make test` installs it)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(metrics)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestBeforeFirstEvaluation(t *testing.T) {
	out := scrape(t, &latest{})
	if strings.Contains(out, "smartcity_maturity") || strings.Contains(out, "smartcity_unknown") || strings.Contains(out, "last_success") {
		t.Errorf("snapshot metrics before the first evaluation:\n%s", out)
	}
	if !strings.Contains(out, "smartcity_evaluation_errors_total 1") || !strings.Contains(out, "smartcity_evaluation_duration_seconds_count 1") ||
		!strings.Contains(out, "smartcity_evaluation_window_seconds 2.592e+06") {
		t.Errorf("evaluation metrics missing:\n%s", out)
	}
	promtool(t, out)
}

func TestMetrics(t *testing.T) {
	out := scrape(t, &latest{s: snapshot(map[string]int{"vic": 5, "berga": 0})})
	promtool(t, out)
	for _, line := range []string{
		`smartcity_maturity_level{municipality="vic"} 5`,
		`smartcity_maturity_level{municipality="berga"} 0`,
		`smartcity_maturity_criterion_passed{criterion="adaptive",level="optimitzat",municipality="vic"} 1`,
		`smartcity_maturity_criterion_passed{criterion="pilot",level="puntual",municipality="berga"} 0`,
		`smartcity_maturity_criterion_value{criterion="pilot",level="puntual",municipality="vic"} 6`,
		`smartcity_sla_compliance_ratio{kpi="containers-emptied-on-time",municipality="vic",service="recollida-residus"} 0.99`,
		`smartcity_sla_objective_ratio{kpi="containers-emptied-on-time",municipality="vic",service="recollida-residus"} 0.95`,
		`smartcity_sla_window_compliance_ratio{kpi="containers-emptied-on-time",municipality="vic",service="recollida-residus",window="1h"} 0.75`,
		`smartcity_sla_window_compliance_ratio{kpi="containers-emptied-on-time",municipality="vic",service="recollida-residus",window="1d"} 1`,
		`smartcity_service_info{area="environment",delivery="concession",municipality="vic",provider="fcc-medi-ambient",service="recollida-residus"} 1`,
		`smartcity_service_reporting_interval_seconds{municipality="vic",service="recollida-residus"} 900`,
		`smartcity_service_stale_threshold_seconds{municipality="vic",service="recollida-residus"} 1800`,
		`smartcity_incidents_open{municipality="vic",service="recollida-residus"} 0`,
		`smartcity_unattributed_measurements{municipality="vic"} 3`,
		`smartcity_unknown_municipality_measurements 42`,
		`smartcity_evaluation_last_success_timestamp_seconds 1.7951760015e+09`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("missing %s", line)
		}
	}
	// No data, no series: berga measures nothing, so no compliance, and the
	// criteria without data have no value.
	for _, absent := range []string{
		`smartcity_sla_compliance_ratio{kpi="containers-emptied-on-time",municipality="berga"`,
		`smartcity_maturity_criterion_value{criterion="service_quality",level="optimitzat",municipality="berga"}`,
		`NaN`,
	} {
		if strings.Contains(out, absent) {
			t.Errorf("present: %s", absent)
		}
	}
}

// TestSeriesDisappear: a municipality, service or SLA gone from the
// snapshot is gone from the next scrape.
func TestSeriesDisappear(t *testing.T) {
	src := &latest{s: snapshot(map[string]int{"vic": 5, "berga": 4})}
	before := scrape(t, src)
	s := snapshot(map[string]int{"vic": 5})
	a := &s.Results["vic"].Assessment
	// enllumenat-public leaves the catalogue, and the containers SLA is gone.
	a.Services = slices.DeleteFunc(a.Services, func(s maturity.ServiceResult) bool { return s.ID == "enllumenat-public" })
	a.SLAs = slices.DeleteFunc(a.SLAs, func(k maturity.SLAResult) bool {
		return k.Service == "enllumenat-public" || k.KPI == "containers-emptied-on-time"
	})
	src.set(s)
	after := scrape(t, src)
	promtool(t, after)
	for _, gone := range []string{`municipality="berga"`, `service="enllumenat-public"`, `kpi="containers-emptied-on-time"`} {
		if !strings.Contains(before, gone) {
			t.Fatalf("%s not in the first scrape", gone)
		}
		if strings.Contains(after, gone) {
			t.Errorf("%s still scraped after it left the snapshot", gone)
		}
	}
}
