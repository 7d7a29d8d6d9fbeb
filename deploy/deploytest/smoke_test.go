package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/assoliment/assoliment/services/simulator/sim"
)

// TestSmoke runs the local platform (embedded NATS, two ingest replicas, the
// evaluator and the simulator) against the ClickHouse server of the tests,
// scrapes it with a real Prometheus loaded with the shipped configuration
// and rules, and runs every dashboard expression and every rule expression
// through Prometheus' HTTP API. It fails on any expression that errors, on
// any that returns no series unless smokeMayBeEmpty says why it may, on any
// alert of smokeQuietAlerts that a healthy platform would raise, on any
// selector that matches no series, and on any rule group that is not
// healthy.
func TestSmoke(t *testing.T) {
	began := time.Now()
	promBin := prometheusBinary(t)
	chAddr := clickHouseAddr(t)
	tmp := t.TempDir()
	p := &platform{logDir: filepath.Join(tmp, "logs")}
	if err := os.Mkdir(p.logDir, 0o755); err != nil {
		t.Fatal(err)
	}

	// Cleanups run last-registered first: processes stop in the reverse
	// order of their start, then the database is dropped, then the logs of
	// a failed run are printed.
	t.Cleanup(func() { p.dumpLogs(t) })
	db := fmt.Sprintf("smoke_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		if err := clickHouseQuery(chAddr, "DROP DATABASE IF EXISTS "+db); err != nil {
			t.Errorf("drop the smoke database: %v", err)
		}
	})

	bins := buildServices(t, filepath.Join(tmp, "bin"), map[string]string{
		"natsd":     "platform",
		"ingest":    "ingest",
		"evaluator": "evaluator",
		"simulator": "simulator",
	})
	t.Logf("built the services in %s", time.Since(began).Round(time.Millisecond))

	natsAddr := freeAddr(t)
	natsURL := "nats://" + natsAddr
	// MQTT on a free port too: 1883 may be taken by a local run.
	p.start(t, "natsd", bins["natsd"], "--addr", natsAddr, "--mqtt-addr", freeAddr(t), "--store", filepath.Join(tmp, "nats"))
	p.waitFor(t, 20*time.Second, "NATS to accept connections", func() (bool, string) {
		c, err := dialTCP(natsAddr)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})

	// As many ingest replicas as prometheus.yml scrapes.
	var ingestAddrs []string
	for _, sc := range loadPromConfig(t).ScrapeConfigs {
		if sc.JobName == "ingest" {
			for _, st := range sc.StaticConfigs {
				for range st.Targets {
					ingestAddrs = append(ingestAddrs, freeAddr(t))
				}
			}
		}
	}
	if len(ingestAddrs) == 0 {
		t.Fatal("prometheus.yml scrapes no ingest target")
	}
	for i, addr := range ingestAddrs {
		p.start(t, fmt.Sprintf("ingest-%d", i+1), bins["ingest"],
			"--nats-url", natsURL, "--clickhouse-addr", chAddr, "--clickhouse-database", db, "--http-addr", addr)
	}
	evalAddr := freeAddr(t)
	p.start(t, "evaluator", bins["evaluator"],
		"--nats-url", natsURL, "--clickhouse-addr", chAddr, "--clickhouse-database", db, "--http-addr", evalAddr,
		"--criteria-file", repoPath(t, "deploy", "evaluator", "criteria.yaml"),
		// Often, so that the evaluation histogram and timestamp move while
		// Prometheus scrapes.
		"--evaluation-interval", "2s")
	for _, addr := range append(slices.Clone(ingestAddrs), evalAddr) {
		p.waitFor(t, 60*time.Second, "http://"+addr+"/readyz", func() (bool, string) {
			resp, err := httpClient.Get("http://" + addr + "/readyz")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == 200, resp.Status
		})
	}

	// The default run mode: 60 days of history (every designed level needs
	// it), then live events. The backfill takes a few seconds.
	p.start(t, "simulator", bins["simulator"], "--nats-url", natsURL, "--mode", "run", "--seed", "1", "--backfill", "60d")

	designed := map[string]int{}
	for _, m := range sim.Designed() {
		designed[m.ID] = m.Level
	}
	var levels map[string]int
	p.waitFor(t, 60*time.Second, "the evaluator to list every simulated municipality", func() (bool, string) {
		levels = municipalityLevels(t, evalAddr)
		for id := range designed {
			if _, ok := levels[id]; !ok {
				return false, fmt.Sprintf("listed %v", levels)
			}
		}
		return true, ""
	})
	// The first evaluations may run before the backfill is stored. Give
	// the levels a moment to cover the designed ones (0 to 5) so that the
	// panels show their usual content; the levels themselves are checked by
	// the simulator's and the evaluator's own tests, not here.
	settle := time.Now().Add(30 * time.Second)
	for !coversLevels(levels, designed) && time.Now().Before(settle) {
		p.checkAlive(t)
		time.Sleep(500 * time.Millisecond)
		levels = municipalityLevels(t, evalAddr)
	}
	t.Logf("platform ready after %s; levels %v (designed %v)", time.Since(began).Round(time.Millisecond), levels, designed)

	promAddr := freeAddr(t)
	cfgPath := filepath.Join(tmp, "prometheus.yml")
	cfg := smokePromConfig(t, map[string][]string{"ingest": ingestAddrs, "evaluator": {evalAddr}})
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	p.start(t, "prometheus", promBin,
		"--config.file", cfgPath,
		"--storage.tsdb.path", filepath.Join(tmp, "prometheus"),
		"--web.listen-address", promAddr)
	prom := promAPI{base: "http://" + promAddr}
	targets := len(ingestAddrs) + 1

	// A few scrapes of every target, all of them up, and every rule
	// evaluated at least once.
	p.waitFor(t, 45*time.Second, "10 successful scrapes of every target", func() (bool, string) {
		r, err := prom.query("count_over_time(up[1m]) >= 10 and up == 1", time.Now())
		if err != nil {
			return false, err.Error()
		}
		return len(r) == targets, describe(r)
	})
	p.waitFor(t, 10*time.Second, "every rule to be evaluated", func() (bool, string) {
		groups, err := prom.rules()
		if err != nil {
			return false, err.Error()
		}
		for _, g := range groups {
			for _, r := range g.Rules {
				if r.LastEvaluation.IsZero() || r.LastEvaluation.Year() < 2000 {
					return false, g.Name + "/" + r.Name + " not evaluated yet"
				}
			}
		}
		return len(groups) > 0, fmt.Sprintf("%d groups", len(groups))
	})
	t.Logf("Prometheus scraped the platform; querying after %s", time.Since(began).Round(time.Millisecond))

	checkRuleGroups(t, prom)
	for _, addr := range append(slices.Clone(ingestAddrs), evalAddr) {
		checkMetricsLint(t, "http://"+addr+"/metrics")
	}

	exprs := smokeExpressions(t, prom)
	at := time.Now()
	quietSeen := map[string]bool{}
	selectors := map[string]string{}
	for _, e := range exprs {
		series, err := prom.query(e.expr, at)
		if err != nil {
			t.Errorf("%s: %v\n\t%s", e.key, err, e.expr)
			continue
		}
		reason, quiet := smokeQuietAlerts[e.alert]
		if e.alert != "" && quiet {
			quietSeen[e.alert] = true
			if len(series) > 0 {
				t.Errorf("%s: a healthy platform would raise this alert (%s): %s\n\t%s", e.key, reason, describe(series), e.expr)
			}
		} else if len(series) == 0 {
			if _, ok := smokeMayBeEmpty[e.key]; ok {
				if e.panel && e.noValue == "" {
					t.Errorf("%s: may be empty, but then the panel shows a bare \"No data\", as when it is broken; "+
						"say what empty means in fieldConfig.defaults.noValue", e.key)
				}
			} else {
				t.Errorf("%s: no series\n\t%s", e.key, e.expr)
			}
		} else if _, ok := smokeMayBeEmpty[e.key]; ok {
			t.Logf("%s (allowed to be empty) returned %s", e.key, describe(series))
		}
		// Every selector must match series, so that an expression that
		// is empty by design is not empty by a misspelt name or label.
		node, err := newParser().ParseExpr(e.expr)
		if err != nil {
			t.Errorf("%s: %v", e.key, err)
			continue
		}
		parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				if _, seen := selectors[vs.String()]; !seen {
					selectors[vs.String()] = e.key
				}
			}
			return nil
		})
	}
	for sel, where := range selectors {
		r, err := prom.query("count("+sel+")", at)
		if err != nil {
			t.Errorf("%s: selector %s: %v", where, sel, err)
		} else if len(r) == 0 {
			t.Errorf("%s: selector %s matches no series", where, sel)
		}
	}
	for key := range smokeQuietAlerts {
		if !quietSeen[key] {
			t.Errorf("smokeQuietAlerts lists %s, which is no alert of deploy/prometheus/rules", key)
		}
	}
	sqls := checkClickHousePanels(t, chAddr, db, at, prom)
	for key := range smokeMayBeEmpty {
		if !sqls[key] && !slices.ContainsFunc(exprs, func(e smokeExpr) bool { return e.key == key }) {
			t.Errorf("smokeMayBeEmpty lists %q, which is no dashboard target or rule any more", key)
		}
	}
	t.Logf("ran %d PromQL expressions, %d selectors and %d ClickHouse queries; %s in all",
		len(exprs), len(selectors), len(sqls), time.Since(began).Round(time.Millisecond))
}

// checkMetricsLint runs `promtool check metrics` on what a service exports
// and fails on any problem it reports (names, types, help, units).
func checkMetricsLint(t *testing.T, url string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Errorf("GET %s: %v", url, err)
		return
	}
	defer resp.Body.Close()
	cmd := exec.Command(promtool(t), "check", "metrics")
	cmd.Stdin = resp.Body
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics on %s: %v\n%s", url, err, out)
	}
}

// clickHouseMacroRE matches the macros of the ClickHouse data source
// plugin: $__name or $__name(column).
var clickHouseMacroRE = regexp.MustCompile(`\$__(\w+)(?:\(([^)]*)\))?`)

// checkClickHousePanels runs the SQL of every ClickHouse target and
// annotation over the last hour in the smoke database, with the plugin's
// macros expanded and the dashboard's variables set as for the PromQL
// targets, and fails on an error or on no rows (the evaluator has just
// recorded the first level of every municipality) unless smokeMayBeEmpty
// says why there may be none. It returns the keys of the queries it ran.
func checkClickHousePanels(t *testing.T, addr, db string, at time.Time, prom promAPI) map[string]bool {
	t.Helper()
	from, to := at.Add(-time.Hour).Unix(), at.Add(time.Minute).Unix()
	ran := map[string]bool{}
	run := func(where, rawSQL, noValue string, panel bool, values map[string]string) {
		ran[where] = true
		sql := clickHouseMacroRE.ReplaceAllStringFunc(rawSQL, func(m string) string {
			sub := clickHouseMacroRE.FindStringSubmatch(m)
			switch sub[1] {
			case "timeFilter":
				return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", sub[2], from, sub[2], to)
			case "fromTime":
				return fmt.Sprintf("toDateTime(%d)", from)
			case "toTime":
				return fmt.Sprintf("toDateTime(%d)", to)
			case "interval_s":
				return "60"
			}
			t.Errorf("%s: macro %s has no expansion in the smoke test", where, m)
			return m
		})
		sql = substituteSmokeVars(t, where, sql, values)
		out, err := clickHouseOutput(addr, db, sql)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		_, mayBeEmpty := smokeMayBeEmpty[where]
		switch {
		case strings.TrimSpace(out) != "" && mayBeEmpty:
			t.Logf("%s (allowed to be empty) returned %d rows", where, strings.Count(out, "\n"))
		case strings.TrimSpace(out) != "":
		case !mayBeEmpty:
			t.Errorf("%s: no rows\n\t%s", where, sql)
		case panel && noValue == "":
			t.Errorf("%s: may be empty, but then the panel shows a bare \"No data\"; say what empty means in fieldConfig.defaults.noValue", where)
		}
	}
	for _, d := range loadDashboards(t) {
		values, noValues := smokeDashboardSettings(t, d, prom)
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if tg.isClickHouse(p) {
					run(fmt.Sprintf("%s %q %s", d.file, p.Title, tg.RefID), tg.RawSQL, noValues[p.ID], true, values)
				}
			}
		}
		for _, a := range d.Annotations.List {
			if a.Datasource != nil && a.Datasource.Type == clickHouseType {
				run(fmt.Sprintf("%s annotation %q", d.file, a.Name), a.Target.RawSQL, "", false, values)
			}
		}
	}
	return ran
}

// smokeQuietAlerts are the alerts a healthy platform must not raise: their
// expression must return nothing while the simulator, both ingest replicas,
// the evaluator, NATS and ClickHouse all work. Each would be a false page or
// ticket.
var smokeQuietAlerts = map[string]string{
	"EvaluatorDown":                "the evaluator is up and scraped",
	"EvaluatorStale":               "the evaluator completes an evaluation every 2 s",
	"EvaluatorFailing":             "no evaluation fails",
	"IngestDown":                   "both replicas are up and scraped",
	"IngestReplicaDown":            "both replicas are up and scraped",
	"IngestClickHouseUnreachable":  "ClickHouse answers",
	"IngestInsertErrors":           "no batch insert fails",
	"IngestRejectionShareRising":   "the simulator publishes valid events only",
	"IngestConsumerBacklogGrowing": "the replicas keep up once the backfill is stored",
	"IngestConsumerBacklogHigh":    "the replicas keep up once the backfill is stored",
}

// smokeMayBeEmpty are the expressions (dashboard targets as `<file>
// "<panel>" <refId>`, rules as `alert <name>` or `record <name>`) that may
// legitimately return no series on a healthy platform, with the reason. Their
// selectors are still checked to match series.
var smokeMayBeEmpty = map[string]string{
	// Alerts whose firing depends on the simulated data, not on the health
	// of the platform. The simulator designs some SLAs to be missed
	// (Sabadell's street cleaning and buses), daily services, gaps and a
	// flapping municipality, so these may or may not return series.
	"alert SLAErrorBudgetBurnFast":       "only while a simulated SLA spends its budget more than 6 times too fast over 6 h and 1 h",
	"alert SLAErrorBudgetBurnSlow":       "only while a simulated SLA spends its budget steadily too fast over 1 d or 3 d",
	"alert SLABreached":                  "only while a simulated SLA is below its objective over the evaluation window",
	"alert ServiceStoppedReporting":      "only while a simulated service's last measurement is older than its stale threshold",
	"alert MunicipalityStoppedReporting": "only for a simulated municipality none of whose services is live (one designed to have no data)",
	"alert MunicipalityLevelDropped":     "needs a level lower than the day's highest; Prometheus has only seen this run's levels",

	// Panels that list problems and are empty when there are none. Each
	// says so through its noValue text, which the test requires.
	`platform-health.json "Unattributed measurements" A`:                         "only municipalities with measurements from a publisher that is neither the provider nor the council; the simulator publishes none",
	`providers.json "Services not reporting by provider" A`:                      "only providers with a service past its stale threshold; every simulated concession service that reports is hourly or more frequent",
	`platform-health.json "Rejected in the last hour by publisher and reason" A`: "only publishers with rejected events; the simulator publishes valid events only",
	`municipality.json "Open and overdue incidents" A`:                           "only while the municipality has an open incident; the simulated ones open and close over the days",
	`service.json "Open and overdue incidents" A`:                                "only while the service has an open incident",
	`service.json "KPI values against their targets" A`:                          "only with measurements in the range; a quarter-hourly service may have none in the last few minutes of a fresh run",
}

// smokeExpr is one expression TestSmoke runs.
type smokeExpr struct {
	key   string // as in smokeMayBeEmpty
	expr  string // PromQL, Grafana variables substituted
	alert string // the alert's name for alerting rules
	// For dashboard targets: panel is set, and noValue is what the panel
	// shows when the query returns nothing.
	panel   bool
	noValue string
}

// smokeIntervals are the values Grafana's built-in interval variables take
// in the smoke test: long enough for rate() over 1 s scrapes.
var smokeIntervals = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__auto":          "1m",
	"__range":         "5m",
	"__interval_ms":   "15000",
	"__range_ms":      "300000",
	"__range_s":       "300",
}

// smokeChoices are the values of dashboard variables without an "All"
// option: a municipality with every kind of panel content (services, SLAs
// met and breached, incidents, a next level to reach).
var smokeChoices = map[string]string{
	"municipality": "sabadell",
	"service":      "waste-collection",
}

// smokeVariable is the part of a dashboard variable the smoke test needs.
type smokeVariable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
	Query      any    `json:"query"`
}

// smokeExpressions lists every rule expression and every PromQL target of
// the dashboards, with the dashboards' variables substituted. It also runs
// each query variable and checks that it offers the value chosen for it.
func smokeExpressions(t *testing.T, prom promAPI) []smokeExpr {
	t.Helper()
	var out []smokeExpr
	for _, groups := range loadRules(t) {
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					out = append(out, smokeExpr{key: "alert " + r.Alert, expr: r.Expr, alert: r.Alert})
				} else {
					out = append(out, smokeExpr{key: "record " + r.Record, expr: r.Expr})
				}
			}
		}
	}
	for _, d := range loadDashboards(t) {
		values, noValues := smokeDashboardSettings(t, d, prom)
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if tg.isClickHouse(p) || strings.TrimSpace(tg.Expr) == "" {
					continue
				}
				key := fmt.Sprintf("%s %q %s", d.file, p.Title, tg.RefID)
				out = append(out, smokeExpr{key: key, expr: substituteSmokeVars(t, key, tg.Expr, values),
					panel: true, noValue: noValues[p.ID]})
			}
		}
	}
	slices.SortFunc(out, func(a, b smokeExpr) int { return strings.Compare(a.key, b.key) })
	return out
}

// smokePanel is the part of a panel the smoke test needs beyond gPanel.
type smokePanel struct {
	ID          int `json:"id"`
	FieldConfig struct {
		Defaults struct {
			NoValue string `json:"noValue"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Panels []smokePanel `json:"panels"`
}

// smokeDashboardSettings returns the value of each variable of d (the "All"
// value when the variable has one, else its entry in smokeChoices, which the
// variable's own query must offer) and the noValue text of each panel by id.
func smokeDashboardSettings(t *testing.T, d *dashboard, prom promAPI) (map[string]string, map[int]string) {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "deploy", "grafana", "dashboards", d.file))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Panels     []smokePanel `json:"panels"`
		Templating struct {
			List []smokeVariable `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", d.file, err)
	}
	noValues := map[int]string{}
	var walk func([]smokePanel)
	walk = func(ps []smokePanel) {
		for _, p := range ps {
			noValues[p.ID] = p.FieldConfig.Defaults.NoValue
			walk(p.Panels)
		}
	}
	walk(doc.Panels)
	values := map[string]string{}
	for _, v := range doc.Templating.List {
		where := d.file + ": variable " + v.Name
		if v.Type == "datasource" {
			continue // the data sources the test runs against
		}
		value, chosen := smokeChoices[v.Name]
		if v.IncludeAll && v.AllValue != "" {
			value, chosen = v.AllValue, false
		}
		if value == "" {
			t.Errorf("%s: no value for the smoke test; add one to smokeChoices", where)
			continue
		}
		values[v.Name] = value
		if v.Type != "query" {
			continue
		}
		q := (variable{Query: v.Query}).queryString()
		m := labelValuesRE.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("%s: query %q is not label_values(<expr>, <label>)", where, q)
			continue
		}
		label := strings.TrimSpace(q[strings.LastIndex(q, ",")+1 : strings.LastIndex(q, ")")])
		expr := substituteSmokeVars(t, where, m[1], values)
		series, err := prom.query(expr, time.Now())
		if err != nil {
			t.Errorf("%s: %v\n\t%s", where, err, expr)
			continue
		}
		offered := map[string]bool{}
		for _, s := range series {
			offered[s.Metric[label]] = true
		}
		delete(offered, "")
		if len(offered) == 0 {
			t.Errorf("%s: offers no value\n\t%s", where, q)
		} else if chosen && !offered[value] {
			t.Errorf("%s: does not offer %q (offers %v)", where, value, offered)
		}
	}
	return values, noValues
}

// substituteSmokeVars replaces Grafana variables in expr by the smoke
// test's values; a variable without one fails the test.
func substituteSmokeVars(t *testing.T, where, expr string, values map[string]string) string {
	t.Helper()
	return grafanaVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVarRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if v, ok := smokeIntervals[name]; ok {
			return v
		}
		if v, ok := values[name]; ok {
			return v
		}
		t.Errorf("%s: variable %s has no value in the smoke test", where, m)
		return m
	})
}

// checkRuleGroups checks that Prometheus loaded every group of every rule
// file, with every rule, and that all are healthy.
func checkRuleGroups(t *testing.T, prom promAPI) {
	t.Helper()
	groups, err := prom.rules()
	if err != nil {
		t.Fatal(err)
	}
	loaded := map[string]ruleGroup{}
	for _, g := range groups {
		loaded[g.Name] = g
		for _, r := range g.Rules {
			if r.Health != "ok" {
				t.Errorf("rule group %s (%s): rule %s has health %q: %s", g.Name, g.File, r.Name, r.Health, r.LastError)
			}
		}
	}
	want := 0
	for file, fg := range loadRules(t) {
		for _, g := range fg.Groups {
			want++
			lg, ok := loaded[g.Name]
			if !ok {
				t.Errorf("%s: rule group %s is not loaded by Prometheus", rel(t, file), g.Name)
				continue
			}
			if len(lg.Rules) != len(g.Rules) {
				t.Errorf("%s: rule group %s has %d rules, Prometheus loaded %d", rel(t, file), g.Name, len(g.Rules), len(lg.Rules))
			}
		}
	}
	if len(groups) != want {
		t.Errorf("Prometheus loaded %d rule groups, the rule files have %d", len(groups), want)
	}
	t.Logf("Prometheus loaded %d rule groups", len(groups))
}

// municipalityLevels returns the levels the evaluator's API lists (none on
// an error, which the caller's wait reports).
func municipalityLevels(t *testing.T, evalAddr string) map[string]int {
	t.Helper()
	var r struct {
		Municipalities []struct {
			Municipality string `json:"municipality"`
			Level        int    `json:"level"`
		} `json:"municipalities"`
	}
	levels := map[string]int{}
	if err := getJSON("http://"+evalAddr+"/api/v1/municipalities", &r); err != nil {
		return levels
	}
	for _, m := range r.Municipalities {
		levels[m.Municipality] = m.Level
	}
	return levels
}

// coversLevels reports whether every designed level is some municipality's
// current level.
func coversLevels(levels, designed map[string]int) bool {
	have := map[int]bool{}
	for _, l := range levels {
		have[l] = true
	}
	for _, l := range designed {
		if !have[l] {
			return false
		}
	}
	return true
}
