package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/assoliment/assoliment/services/simulator/sim"
)

// alertmanagerBinary returns the Alertmanager server ($ALERTMANAGER, the
// Debian package's /usr/bin/prometheus-alertmanager, or alertmanager on
// PATH) and fails the test when there is none.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ALERTMANAGER"); p != "" {
		return p
	}
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Alertmanager is not installed: alert delivery cannot be tested. " +
		"Install it (Debian: apt-get install prometheus-alertmanager, which `make deps` does) or set ALERTMANAGER to its path.")
	return ""
}

// roadworks is the simulator's Granollers roadworks episode as the
// evaluator exports it while the episode runs: bus punctuality failing
// FailShare of its measurements over the last hour and six hours.
type roadworks struct {
	municipality, service, area, provider, kpi string
	objective, compliance                      float64
}

func granollersRoadworks(t *testing.T) roadworks {
	t.Helper()
	for _, m := range sim.Designed() {
		if m.ID != "granollers" {
			continue
		}
		for _, s := range m.Services {
			for _, k := range s.KPIs {
				if k.Dip == sim.RoadworksDip {
					return roadworks{municipality: m.ID, service: s.ID, area: s.Area, provider: s.Provider, kpi: k.ID,
						objective: k.Objective, compliance: 1 - k.Dip.FailShare}
				}
			}
		}
	}
	t.Fatal("the simulator designs no roadworks episode in Granollers")
	return roadworks{}
}

// evaluatorMetrics is what the evaluator exports for one SLA burning its
// budget: the series the SLA rules read, in the text exposition format.
func (r roadworks) evaluatorMetrics(now time.Time) string {
	svc := fmt.Sprintf(`municipality=%q,service=%q`, r.municipality, r.service)
	sla := fmt.Sprintf(`%s,kpi=%q`, svc, r.kpi)
	var b strings.Builder
	fmt.Fprintf(&b, "smartcity_evaluation_window_seconds %d\n", 30*24*3600)
	fmt.Fprintf(&b, "smartcity_evaluation_last_success_timestamp_seconds %d\n", now.Unix())
	fmt.Fprintf(&b, "smartcity_service_info{%s,area=%q,delivery=\"concession\",provider=%q} 1\n", svc, r.area, r.provider)
	fmt.Fprintf(&b, "smartcity_service_last_measurement_timestamp_seconds{%s} %d\n", svc, now.Unix())
	fmt.Fprintf(&b, "smartcity_service_stale_threshold_seconds{%s} 1800\n", svc)
	fmt.Fprintf(&b, "smartcity_sla_objective_ratio{%s} %g\n", sla, r.objective)
	for _, w := range []string{"1h", "6h"} {
		fmt.Fprintf(&b, "smartcity_sla_window_compliance_ratio{%s,window=%q} %g\n", sla, w, r.compliance)
	}
	for _, w := range []string{"1d", "3d"} {
		fmt.Fprintf(&b, "smartcity_sla_window_compliance_ratio{%s,window=%q} %g\n", sla, w, (r.compliance+3*r.objective)/4)
	}
	return b.String()
}

// notification is the part of Alertmanager's webhook message the test reads.
type notification struct {
	Receiver string `json:"receiver"`
	Status   string `json:"status"`
	Alerts   []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// inbox records the notifications delivered to the test's webhook; the
// path is the receiver's name.
type inbox struct {
	mu   sync.Mutex
	got  []notification
	errs []string
}

func (in *inbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n notification
	err := json.NewDecoder(r.Body).Decode(&n)
	in.mu.Lock()
	defer in.mu.Unlock()
	if err != nil {
		in.errs = append(in.errs, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if want := strings.TrimPrefix(r.URL.Path, "/"); n.Receiver != want {
		in.errs = append(in.errs, fmt.Sprintf("receiver %q posted to /%s", n.Receiver, want))
	}
	in.got = append(in.got, n)
}

// find returns the first alert named alert for municipality delivered to
// receiver, firing.
func (in *inbox) find(receiver, alert, municipality string) (map[string]string, map[string]string, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, n := range in.got {
		for _, a := range n.Alerts {
			if n.Receiver == receiver && a.Status == "firing" && a.Labels["alertname"] == alert && a.Labels["municipality"] == municipality {
				return a.Labels, a.Annotations, true
			}
		}
	}
	return nil, nil, false
}

func (in *inbox) summary() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	var parts []string
	for _, n := range in.got {
		for _, a := range n.Alerts {
			parts = append(parts, n.Receiver+":"+a.Labels["alertname"]+"/"+a.Labels["municipality"]+"/"+a.Status)
		}
	}
	return fmt.Sprintf("%d notifications %v; errors %v", len(in.got), parts, in.errs)
}

// testAlertmanagerConfig is the shipped alertmanager.yml with every
// receiver posting to the test's webhook at /<receiver> (e-mail receivers
// too, so that no mail leaves the machine), and groups sent after a second.
func testAlertmanagerConfig(t *testing.T, webhook string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "deploy", "alertmanager", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	route, _ := cfg["route"].(map[string]any)
	if route == nil {
		t.Fatal("alertmanager.yml has no route")
	}
	route["group_wait"], route["group_interval"] = "1s", "1s"
	receivers, _ := cfg["receivers"].([]any)
	for _, r := range receivers {
		rc, _ := r.(map[string]any)
		name, _ := rc["name"].(string)
		for k := range rc {
			if strings.HasSuffix(k, "_configs") {
				delete(rc, k)
			}
		}
		rc["webhook_configs"] = []any{map[string]any{"url": webhook + "/" + name, "send_resolved": true}}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testRuleFiles copies the shipped rule files into dir with every `for`
// set to one second, and returns their paths.
func testRuleFiles(t *testing.T, dir string) []any {
	t.Helper()
	var out []any
	for _, f := range ruleFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		groups, _ := doc["groups"].([]any)
		for _, g := range groups {
			rules, _ := g.(map[string]any)["rules"].([]any)
			for _, r := range rules {
				if rule := r.(map[string]any); rule["for"] != nil {
					rule["for"] = "1s"
				}
			}
		}
		out2, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(p, out2, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestAlertDelivery runs the shipped rules in a real Prometheus and the
// shipped routing in a real Alertmanager, both processes on loopback, and
// checks that the simulator's Granollers roadworks, as the evaluator
// exports them, page the on-call webhook with SLAErrorBudgetBurnFast (and
// copy the operations mailbox), with its provider and an absolute runbook
// address. Then it checks the inhibition: an SLA alert of a municipality
// that stopped reporting is held back. Only the timings differ from the
// shipped configuration: 1 s scrapes, evaluations, `for` and group waits.
func TestAlertDelivery(t *testing.T) {
	promBin, amBin := prometheusBinary(t), alertmanagerBinary(t)
	tmp := t.TempDir()
	p := &platform{logDir: filepath.Join(tmp, "logs")}
	if err := os.Mkdir(p.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.dumpLogs(t) })

	rw := granollersRoadworks(t)
	evaluator := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, rw.evaluatorMetrics(time.Now()))
	}))
	t.Cleanup(evaluator.Close)
	ingest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprint(w, "smartcity_ingest_clickhouse_up 1\nsmartcity_ingest_consumer_pending_messages 0\n")
	}))
	t.Cleanup(ingest.Close)
	in := &inbox{}
	webhook := httptest.NewServer(in)
	t.Cleanup(webhook.Close)

	amAddr := freeAddr(t)
	amCfg := filepath.Join(tmp, "alertmanager.yml")
	if err := os.WriteFile(amCfg, testAlertmanagerConfig(t, webhook.URL), 0o644); err != nil {
		t.Fatal(err)
	}
	p.start(t, "alertmanager", amBin, "--config.file", amCfg, "--storage.path", filepath.Join(tmp, "am"),
		"--web.listen-address", amAddr, "--cluster.listen-address=")
	p.waitFor(t, 20*time.Second, "Alertmanager to be ready", func() (bool, string) {
		resp, err := httpClient.Get("http://" + amAddr + "/-/ready")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})

	host := func(u string) string { return strings.TrimPrefix(u, "http://") }
	cfg := smokePromConfig(t, map[string][]string{"ingest": {host(ingest.URL)}, "evaluator": {host(evaluator.URL)}})
	var doc map[string]any
	if err := yaml.Unmarshal(cfg, &doc); err != nil {
		t.Fatal(err)
	}
	doc["rule_files"] = testRuleFiles(t, tmp)
	doc["alerting"] = map[string]any{"alertmanagers": []any{map[string]any{
		"static_configs": []any{map[string]any{"targets": []any{amAddr}}}}}}
	cfg, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	promCfg := filepath.Join(tmp, "prometheus.yml")
	if err := os.WriteFile(promCfg, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	p.start(t, "prometheus", promBin, "--config.file", promCfg, "--storage.tsdb.path", filepath.Join(tmp, "prometheus"),
		"--web.listen-address", freeAddr(t))

	var labels, annotations map[string]string
	p.waitFor(t, 40*time.Second, "SLAErrorBudgetBurnFast at the on-call webhook", func() (bool, string) {
		var ok bool
		labels, annotations, ok = in.find("on-call-webhook", "SLAErrorBudgetBurnFast", rw.municipality)
		return ok, in.summary()
	})
	want := map[string]string{"severity": "page", "service": rw.service, "kpi": rw.kpi, "provider": rw.provider}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
	base := loadPromConfig(t).Global.ExternalLabels["runbooks"]
	if got := annotations["runbook_url"]; got != base+"#slaerrorbudgetburnfast" {
		t.Errorf("runbook_url %q, want %s#slaerrorbudgetburnfast", got, base)
	}
	if d := annotations["description"]; !strings.Contains(d, "30-day budget") || !strings.Contains(d, rw.provider) {
		t.Errorf("description %q does not state the 30-day window and the provider", d)
	}
	p.waitFor(t, 10*time.Second, "the page's copy in the operations mailbox", func() (bool, string) {
		_, _, ok := in.find("operations-email", "SLAErrorBudgetBurnFast", rw.municipality)
		return ok, in.summary()
	})

	// Inhibition: the municipality-wide alert first, then an SLA alert of
	// the same municipality, straight into Alertmanager's API.
	post := func(alert map[string]string) {
		t.Helper()
		body, _ := json.Marshal([]map[string]any{{"labels": alert, "annotations": map[string]string{"summary": "test"}}})
		resp, err := httpClient.Post("http://"+amAddr+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST /api/v2/alerts: %s", resp.Status)
		}
	}
	post(map[string]string{"alertname": "MunicipalityStoppedReporting", "severity": "ticket", "municipality": "olot"})
	p.waitFor(t, 10*time.Second, "MunicipalityStoppedReporting in the operations mailbox", func() (bool, string) {
		_, _, ok := in.find("operations-email", "MunicipalityStoppedReporting", "olot")
		return ok, in.summary()
	})
	post(map[string]string{"alertname": "SLABreached", "severity": "ticket", "municipality": "olot",
		"service": "buses", "kpi": "punctuality", "provider": "bus-garrotxa"})
	p.waitFor(t, 10*time.Second, "SLABreached of olot to be inhibited", func() (bool, string) {
		var alerts []struct {
			Labels map[string]string `json:"labels"`
			Status struct {
				State       string   `json:"state"`
				InhibitedBy []string `json:"inhibitedBy"`
			} `json:"status"`
		}
		if err := getJSON("http://"+amAddr+"/api/v2/alerts?filter=alertname%3D%22SLABreached%22", &alerts); err != nil {
			return false, err.Error()
		}
		for _, a := range alerts {
			if a.Labels["municipality"] == "olot" {
				return a.Status.State == "suppressed" && len(a.Status.InhibitedBy) > 0, a.Status.State
			}
		}
		return false, "not received"
	})
	// Two group intervals later, still nothing about it was sent.
	time.Sleep(2500 * time.Millisecond)
	for _, r := range []string{"on-call-webhook", "operations-email"} {
		if _, _, ok := in.find(r, "SLABreached", "olot"); ok {
			t.Errorf("the inhibited SLABreached of olot reached %s", r)
		}
	}
	in.mu.Lock()
	if len(in.errs) > 0 {
		t.Errorf("webhook errors: %v", in.errs)
	}
	in.mu.Unlock()
}
