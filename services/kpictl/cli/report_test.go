package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/assoliment/assoliment/services/platform/testenv"
)

// reportJSON is an evaluator's report with a name that tries to drive the
// terminal.
const reportJSON = `{"municipality":"sabadell","month":"2026-10","time_zone":"Europe/Madrid",
"from":"2026-10-01T00:00:00+02:00","to":"2026-11-01T00:00:00+01:00","complete":true,"min_samples":10,
"providers":[
 {"provider":"bus-vallesa","delivery":"concession","met":1,"not_met":1,"not_measured":1,"slas":[
  {"service":"bus","service_name":"Bus","area":"mobility","kpi":"punctuality","name":"Puntualitat","unit":"ratio","direction":"higher_is_better",
   "target":0.85,"objective":0.9,"defined_at":"2026-01-01T00:00:00Z","samples":2980,"meeting":2203,"compliance":0.7392617449664429,
   "measured":true,"met":false,"breach_days":["2026-10-01","2026-10-04"],"days":[]},
  {"service":"bus","service_name":"Bus","area":"mobility","kpi":"fleet","name":"Flota","unit":"\u001b[31mred","direction":"higher_is_better",
   "target":0.95,"objective":0.95,"defined_at":"2026-01-01T00:00:00Z","samples":100,"meeting":95,"compliance":0.95,
   "measured":true,"met":true,"breach_days":[],"days":[]},
  {"service":"bus","service_name":"Bus","area":"mobility","kpi":"wait","name":"Espera","unit":"min","direction":"lower_is_better",
   "target":12,"objective":0.9,"defined_at":"2026-01-01T00:00:00Z","samples":3,"meeting":3,"compliance":null,
   "measured":false,"met":false,"breach_days":[],"days":[]}]}],
"retired_services":[{"service":"vell","name":"Servei\u0007 vell","provider":"antic","retired_at":"2026-10-20T10:00:00+02:00"}]}`

// evaluatorForReports answers the report of sabadell in the format Accept
// asks for, 404 for any other municipality and 400 for a month in the
// future; it records the Accept header of each request.
func evaluatorForReports(t *testing.T) (*httptest.Server, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var accepts []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		accepts = append(accepts, r.Header.Get("Accept"))
		mu.Unlock()
		switch {
		case r.URL.Path == "/api/v1/municipalities/sabadell/reports/2099-01":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"month must be between 2000-01 and 2026-11 (the current month in Europe/Madrid)"}`)
		case r.URL.Path != "/api/v1/municipalities/sabadell/reports/2026-10":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"unknown municipality"}`)
		case r.Header.Get("Accept") == "text/csv":
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			fmt.Fprint(w, "\"municipality\",\"month\"\r\n\"sabadell\",\"2026-10\"\r\n")
		case r.Header.Get("Accept") == "text/html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, "<!DOCTYPE html><html><body><svg class=\"chart\"></svg></body></html>\n")
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintln(w, strings.ReplaceAll(reportJSON, "\n", ""))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), accepts...)
	}
}

func TestReport(t *testing.T) {
	srv, accepts := evaluatorForReports(t)
	env := map[string]string{"EVALUATOR_URL": srv.URL}

	r := run(t, env, "report", "sabadell", "2026-10")
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("%+v", r)
	}
	for _, want := range []string{
		"sabadell: SLA report for 2026-10, 1 October 2026 00:00 CEST to 1 November 2026 00:00 CET (Europe/Madrid)",
		"bus-vallesa (concession): 1 met, 1 not met, 1 not measured",
		"SERVICE", "COMPLIANCE", "BREACH DAYS",
		">= 0.85 ratio", "90 %", "73.93 %", "NOT MET", "1, 4",
		"95.00 %", "met", "?[31mred",
		"<= 12 min", "no data", "not measured",
		"Retired during the month (not judged):", "  - vell (Servei? vell, antic), retired 20 October 2026 10:00 CEST",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.ContainsAny(r.stdout, "\x1b\x07") {
		t.Errorf("control characters reach the terminal: %q", r.stdout)
	}

	r = run(t, env, "report", "sabadell", "2026-10", "--json")
	var got map[string]any
	if r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &got) != nil || got["month"] != "2026-10" || !strings.HasSuffix(r.stdout, "}\n") ||
		!strings.Contains(r.stdout, "\n  \"providers\"") {
		t.Fatalf("--json: %+v", r)
	}
	if r := run(t, env, "report", "sabadell", "2026-10", "--format", "json"); r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &got) != nil {
		t.Fatalf("--format json: %+v", r)
	}
	r = run(t, env, "report", "sabadell", "2026-10", "--format", "csv")
	if r.code != ExitOK || r.stdout != "\"municipality\",\"month\"\r\n\"sabadell\",\"2026-10\"\r\n" {
		t.Fatalf("--format csv: %+v", r)
	}
	out := filepath.Join(t.TempDir(), "report.html")
	r = run(t, env, "report", "sabadell", "2026-10", "--format", "html", "--output", out)
	b, err := os.ReadFile(out)
	if r.code != ExitOK || r.stdout != "" || err != nil || !strings.Contains(string(b), `<svg class="chart">`) {
		t.Fatalf("--format html --output: %+v, %v %q", r, err, b)
	}
	if want := []string{"application/json", "application/json", "application/json", "text/csv", "text/html"}; fmt.Sprint(accepts()) != fmt.Sprint(want) {
		t.Errorf("Accept headers %q, want %q", accepts(), want)
	}

	// Failures: exit 1, the evaluator's reason on standard error.
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{env, []string{"report", "atlantis", "2026-10"}, `municipality "atlantis": not found: unknown municipality`},
		{env, []string{"report", "sabadell", "2099-01"}, "month must be between 2000-01 and 2026-11"},
		{env, []string{"report", "sabadell", "2026-10", "--output", filepath.Join(t.TempDir(), "no", "such", "dir.csv")}, "write report"},
		{map[string]string{"EVALUATOR_URL": "http://" + testenv.FreeAddr(t)}, []string{"report", "sabadell", "2026-10"}, "evaluator at http://"},
	} {
		r := run(t, c.env, c.args...)
		if r.code != ExitFailed || r.stdout != "" || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: %+v; want exit 1 with %q", c.args, r, c.want)
		}
	}
}

// Usage problems exit 2, before any request, naming what is wrong.
func TestReportUsage(t *testing.T) {
	srv, accepts := evaluatorForReports(t)
	env := map[string]string{"EVALUATOR_URL": srv.URL}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"report"}, "MUNICIPALITY and YYYY-MM"},
		{[]string{"report", "sabadell"}, "MUNICIPALITY and YYYY-MM"},
		{[]string{"report", "sabadell", "2026-10", "extra"}, "MUNICIPALITY and YYYY-MM"},
		{[]string{"report", "Sabadell!", "2026-10"}, "municipality id"},
		{[]string{"report", "sabadell", "2026-13"}, "YYYY-MM, such as 2026-10"},
		{[]string{"report", "sabadell", "2026/10"}, "YYYY-MM"},
		{[]string{"report", "sabadell", "26-10"}, "YYYY-MM"},
		{[]string{"report", "sabadell", "2026-10", "--format", "pdf"}, "text, json, csv, html"},
		{[]string{"report", "sabadell", "2026-10", "--json", "--format", "csv"}, "--json and --format csv"},
		{[]string{"report", "sabadell", "2026-10", "--output", ""}, "--output needs a FILE"},
	} {
		r := run(t, env, c.args...)
		if r.code != ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "kpictl report --help") {
			t.Errorf("%q: %+v; want exit 2 with %q", c.args, r, c.want)
		}
	}
	if n := len(accepts()); n != 0 {
		t.Errorf("%d requests for usage errors", n)
	}
	if r := run(t, map[string]string{"EVALUATOR_URL": "ftp://x"}, "report", "vic", "2026-10"); r.code != ExitUsage || !strings.Contains(r.stderr, "EVALUATOR_URL") {
		t.Errorf("EVALUATOR_URL: %+v", r)
	}
	if r := run(t, nil, "report", "--help"); r.code != ExitOK || !strings.Contains(r.stdout, "Examples") || !strings.Contains(r.stdout, "$EVALUATOR_URL") {
		t.Errorf("help: %+v", r)
	}
}
