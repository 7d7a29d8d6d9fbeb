package deploytest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// exportedGauges and exportedCounters are the metrics the services export
// (docs/operations.md, "Metrics reference").
var (
	exportedGauges = []string{
		"smartcity_maturity_level",
		"smartcity_maturity_criterion_passed",
		"smartcity_maturity_criterion_value",
		"smartcity_sla_compliance_ratio",
		"smartcity_sla_objective_ratio",
		"smartcity_sla_error_budget_remaining_ratio",
		"smartcity_sla_window_compliance_ratio",
		"smartcity_service_info",
		"smartcity_service_last_measurement_timestamp_seconds",
		"smartcity_incidents_open",
		"smartcity_evaluation_last_success_timestamp_seconds",
		"smartcity_unattributed_measurements",
		"smartcity_service_reporting_interval_seconds",
		"smartcity_service_stale_threshold_seconds",
		"smartcity_evaluation_window_seconds",
		"smartcity_ingest_consumer_pending_messages",
		"smartcity_ingest_clickhouse_up",
		"up",
	}
	exportedCounters = []string{
		"smartcity_evaluation_errors_total",
		"smartcity_ingest_events_total",
		"smartcity_ingest_rejections_total",
		"smartcity_ingest_insert_errors_total",
	}
	exportedHistograms = []string{
		"smartcity_evaluation_duration_seconds",
		"smartcity_ingest_batch_size",
		"smartcity_ingest_insert_duration_seconds",
	}
	// Go runtime and process collectors of the Go client library.
	runtimePrefixes = []string{"go_", "process_", "promhttp_"}
)

// knownMetrics is every series name a rule or dashboard may select: the
// exported metrics, histogram series, and recording rules.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, n := range exportedGauges {
		known[n] = true
	}
	for _, n := range exportedCounters {
		known[n] = true
	}
	for _, n := range exportedHistograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			known[n+suffix] = true
		}
	}
	for _, groups := range loadRules(t) {
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					known[r.Record] = true
				}
			}
		}
	}
	return known
}

// metricNames parses expr and returns the metric names it selects.
func metricNames(expr string) ([]string, error) {
	node, err := newParser().ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names []string
	var bad error
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				if m.Type != labels.MatchEqual {
					bad = fmt.Errorf("selector %s matches metric names by pattern", vs)
				}
				name = m.Value
			}
		}
		if name == "" {
			bad = fmt.Errorf("selector %s has no metric name", vs)
		}
		names = append(names, name)
		return nil
	})
	return names, bad
}

func isKnown(known map[string]bool, name string) bool {
	if known[name] {
		return true
	}
	return slices.ContainsFunc(runtimePrefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// checkExpr reports a parse error or an unknown metric in expr.
func checkExpr(t *testing.T, known map[string]bool, where, expr string) {
	t.Helper()
	names, err := metricNames(expr)
	if err != nil {
		t.Errorf("%s: %v\n\t%s", where, err, expr)
		return
	}
	for _, n := range names {
		if !isKnown(known, n) {
			t.Errorf("%s: unknown metric %q (not exported by the services, not a Go/process metric, not a recording rule)", where, n)
		}
	}
}

func TestRuleExpressionsUseKnownMetrics(t *testing.T) {
	known := knownMetrics(t)
	for file, groups := range loadRules(t) {
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				name := r.Record
				if name == "" {
					name = r.Alert
				}
				checkExpr(t, known, rel(t, file)+": "+name, r.Expr)
			}
		}
	}
}

// grafanaVarRE matches $var, ${var}, ${var:format} and [[var]].
var grafanaVarRE = regexp.MustCompile(`\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)`)

// substituteGrafanaVars replaces Grafana variables by values that keep the
// expression valid PromQL: durations for interval variables, numbers for
// their _s/_ms forms, and a plain word for template variables (which only
// appear inside label matchers).
func substituteGrafanaVars(expr string) string {
	return grafanaVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVarRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		switch name {
		case "__interval", "__rate_interval", "__range", "__auto":
			return "5m"
		case "__interval_ms", "__range_ms":
			return "300000"
		case "__range_s":
			return "300"
		default:
			return "x"
		}
	})
}

func TestSubstituteGrafanaVars(t *testing.T) {
	cases := map[string]string{
		`rate(x{a="$municipality"}[$__rate_interval])`: `rate(x{a="x"}[5m])`,
		`sum_over_time(x[${__range}]) / ${__range_s}`:  `sum_over_time(x[5m]) / 300`,
		`x{p=~"${provider:regex}"} and y{q="[[var]]"}`: `x{p=~"x"} and y{q="x"}`,
	}
	for in, want := range cases {
		if got := substituteGrafanaVars(in); got != want {
			t.Errorf("substituteGrafanaVars(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMetricNames(t *testing.T) {
	names, err := metricNames(`sum(rate(a_total[5m])) / on(x) group_left b and {__name__="c"}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a_total", "b", "c"}; !slices.Equal(names, want) {
		t.Errorf("got %v, want %v", names, want)
	}
	if _, err := metricNames(`{__name__=~"smartcity_.*"}`); err == nil {
		t.Error("a metric-name pattern must be reported")
	}
	if _, err := metricNames(`sum(`); err == nil {
		t.Error("a syntax error must be reported")
	}
}

// labelValuesRE matches label_values(<expr>, <label>) and query_result(<expr>).
var (
	labelValuesRE = regexp.MustCompile(`^\s*label_values\((.+),\s*\w+\s*\)\s*$`)
	queryResultRE = regexp.MustCompile(`^\s*query_result\((.+)\)\s*$`)
)

func TestDashboardExpressionsUseKnownMetrics(t *testing.T) {
	known := knownMetrics(t)
	for _, d := range loadDashboards(t) {
		exprs := 0
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if tg.isClickHouse(p) {
					continue
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: panel %q target %s has no expression", d.file, p.Title, tg.RefID)
					continue
				}
				exprs++
				checkExpr(t, known, fmt.Sprintf("%s: panel %q target %s", d.file, p.Title, tg.RefID),
					substituteGrafanaVars(tg.Expr))
			}
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q := v.queryString()
			for _, re := range []*regexp.Regexp{labelValuesRE, queryResultRE} {
				if m := re.FindStringSubmatch(q); m != nil {
					checkExpr(t, known, fmt.Sprintf("%s: variable %s", d.file, v.Name), substituteGrafanaVars(m[1]))
				}
			}
		}
		if exprs == 0 && d.UID != "" {
			t.Logf("%s: no PromQL targets", d.file)
		}
	}
}
