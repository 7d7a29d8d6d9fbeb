package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	evalconfig "github.com/assoliment/assoliment/services/evaluator/config"
	"github.com/assoliment/assoliment/services/evaluator/internal/history"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	evaluator "github.com/assoliment/assoliment/services/evaluator/service"
	"github.com/assoliment/assoliment/services/platform/proc"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
)

// eventsFor turns a rules input into the events that produce it, and
// returns the input those events really describe (times clamped to what
// the contract accepts, counts and last measurements as generated).
func eventsFor(in maturity.Input) ([]*contract.Event, maturity.Input) {
	at := in.At
	oldest := at.Add(-300 * 24 * time.Hour)
	var evs []*contract.Event
	n := 0
	add := func(typ, publisher string, t time.Time, data any) {
		n++
		evs = append(evs, &contract.Event{ID: fmt.Sprintf("%s-%d", in.Municipality, n), Type: typ, Time: t,
			Municipality: in.Municipality, Publisher: publisher, Data: data})
	}
	out := in
	out.Services = append([]maturity.Service(nil), in.Services...)
	out.SLAs = append([]maturity.SLA(nil), in.SLAs...)
	last := map[string]time.Time{}
	countC := map[string]int{}
	measure := func(s maturity.Service, kpi string, t time.Time, v float64) {
		add(contract.TypeKPIMeasured, s.Provider, t, &contract.KPIMeasured{Service: s.ID, KPI: kpi, Value: v})
		if t.After(last[s.ID]) {
			last[s.ID] = t
		}
		if !t.Before(at.Add(-30 * 24 * time.Hour)) {
			countC[s.ID]++
		}
	}
	svc := map[string]maturity.Service{}
	for i, s := range in.Services {
		reg := s.FirstRegistered
		if reg.Before(oldest) {
			reg = oldest
		}
		out.Services[i].FirstRegistered = reg
		svc[s.ID] = s
		add(contract.TypeServiceRegistered, contract.Council, reg, &contract.ServiceRegistered{Service: s.ID, Name: s.Name,
			Area: s.Area, Delivery: s.Delivery, Provider: s.Provider, ReportingIntervalSeconds: int64(s.ReportingInterval / time.Second), OpenData: s.OpenData})
	}
	for i, k := range in.SLAs {
		def := k.FirstDefined
		if def.Before(oldest) {
			def = oldest
		}
		out.SLAs[i].FirstDefined = def
		add(contract.TypeSLADefined, contract.Council, def, &contract.SLADefined{Service: k.Service, KPI: k.KPI, Name: k.Name,
			Unit: k.Unit, Direction: k.Direction, Target: k.Target, Objective: k.Objective})
		miss := k.Target - 1
		if k.Direction == contract.LowerIsBetter {
			miss = k.Target + 1
		}
		window := func(w maturity.WindowStats, end time.Time) {
			step := 25 * 24 * time.Hour / time.Duration(max(w.Samples, 1))
			for j := 0; j < w.Samples; j++ {
				v := miss
				if j < w.Meeting {
					v = k.Target
				}
				measure(svc[k.Service], k.KPI, end.Add(-time.Duration(j)*step), v)
			}
		}
		window(k.C, at.Add(-2*time.Minute))
		window(k.P, at.Add(-31*24*time.Hour))
	}
	for i, s := range in.Services {
		for j := countC[s.ID]; j < s.MeasurementsC; j++ {
			measure(s, "activity", at.Add(-3*time.Minute-time.Duration(j)*time.Hour), 1)
		}
		out.Services[i].MeasurementsC = countC[s.ID]
		out.Services[i].LastMeasurement = last[s.ID]
	}
	for _, inc := range in.Incidents {
		s := svc[inc.Service]
		add(contract.TypeIncidentOpened, s.Provider, inc.OpenedAt, &contract.IncidentOpened{Service: inc.Service, Incident: inc.ID,
			Priority: inc.Priority, ResolutionTargetSeconds: int64(inc.Deadline.Sub(inc.OpenedAt) / time.Second)})
		if !inc.ResolvedAt.IsZero() {
			add(contract.TypeIncidentResolved, s.Provider, inc.ResolvedAt, &contract.IncidentResolved{Service: inc.Service, Incident: inc.ID})
		}
	}
	return evs, out
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0 // not listening yet
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, b)
		}
	}
	return resp.StatusCode
}

type running struct{ stop func() }

// binDir holds the binaries the tests build; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evaluator-service-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var buildIngest sync.Once

// startIngest runs the ingest service as a process, built from its own
// module (the evaluator does not import it), with args; it is stopped when
// the test ends, and the test fails unless it exits 0.
func startIngest(t *testing.T, args ...string) *running {
	t.Helper()
	bin := filepath.Join(binDir, "ingest")
	buildIngest.Do(func() {
		if out, err := exec.Command("go", "build", "-C", "../../ingest", "-o", bin, "./cmd/ingest").CombinedOutput(); err != nil {
			t.Fatalf("build ingest: %v\n%s", err, out)
		}
	})
	cmd, err := proc.Start(bin, append(args, "--log-level", "warn")...)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		if err := proc.Stop(cmd); err != nil {
			t.Errorf("ingest: %v", err)
		}
	}
	t.Cleanup(r.stop)
	return r
}

func run(t *testing.T, name string, fn func(ctx context.Context) error) *running {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	r := &running{}
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	t.Cleanup(r.stop)
	return r
}

// TestEndToEnd publishes municipalities designed for every level 0–5
// through NATS, stores them with the real ingest service in ClickHouse and
// checks the evaluator's verdicts through the API and /metrics.
func TestEndToEnd(t *testing.T) {
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	at := time.Now().UTC().Truncate(time.Second)

	startIngest(t, "--nats-url", ns.ClientURL(), "--clickhouse-database", ch.Database,
		"--clickhouse-addr", testenv.ClickHouseAddr(), "--http-addr", testenv.FreeAddr(t), "--flush-interval", "50ms")

	js := testenv.JetStream(t, ns)
	testenv.Eventually(t, "stream", 20*time.Second, func() bool { _, err := js.Stream(context.Background(), contract.Stream); return err == nil })
	want := map[string]maturity.Input{}
	pub := contract.NewPublisher(js)
	ctx := context.Background()
	total := 0
	for level := 0; level <= maturity.MaxLevel; level++ {
		m := fmt.Sprintf("municipi-%d", level)
		evs, in := eventsFor(maturity.SampleInput(m, level, at))
		want[m] = in
		for i, ev := range evs {
			if err := pub.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
			if i%7 == 0 { // a re-sent copy never counts twice
				if err := pub.Publish(ctx, ev); err != nil {
					t.Fatal(err)
				}
			}
		}
		total += len(evs)
		// Measurements from someone who is not the provider never count.
		for i := 0; i < 20; i++ {
			intruder := &contract.Event{ID: fmt.Sprintf("x-%d", i), Type: contract.TypeKPIMeasured, Time: at.Add(-time.Hour),
				Municipality: m, Publisher: "intrus", Data: &contract.KPIMeasured{Service: in.Services[0].ID, KPI: in.SLAs[0].KPI, Value: -1e9}}
			if err := pub.Publish(ctx, intruder); err != nil {
				t.Fatal(err)
			}
			total++
		}
	}
	// A municipality whose council has published nothing is not known: its
	// measurements are stored and counted apart, and create nothing.
	stray := &contract.Event{ID: "s-1", Type: contract.TypeKPIMeasured, Time: at.Add(-time.Hour), Municipality: "desconegut",
		Publisher: "algu", Data: &contract.KPIMeasured{Service: "x", KPI: "y", Value: 1}}
	if err := pub.Publish(ctx, stray); err != nil {
		t.Fatal(err)
	}
	total++
	if err := pub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "all events stored", 60*time.Second, func() bool {
		var n uint64
		q := "SELECT (SELECT count() FROM `" + ch.Database + "`.measurements) + (SELECT count() FROM `" + ch.Database + "`.catalog) + (SELECT count() FROM `" + ch.Database + "`.incidents)"
		_ = ch.QueryRow(ctx, q).Scan(&n)
		return n == uint64(total)
	})

	// Two replicas racing on copies of the same events would leave a second
	// row per identity until merged, with those identities recorded in the
	// duplicates table: the verdicts must not change meanwhile.
	cols := strings.Join(storage.MeasurementColumns, ", ")
	for _, q := range []string{
		"INSERT INTO {db}.measurements (" + cols + ") SELECT " + cols + " FROM {db}.measurements WHERE municipality = 'municipi-5' ORDER BY id LIMIT 60",
		"INSERT INTO {db}.duplicates (municipality, publisher, id, detected_at, resolved, version) SELECT DISTINCT municipality, publisher, id, now(), 0, 1 FROM {db}.measurements WHERE municipality = 'municipi-5' ORDER BY id LIMIT 60",
	} {
		if err := ch.Exec(ctx, strings.ReplaceAll(q, "{db}", "`"+ch.Database+"`")); err != nil {
			t.Fatal(err)
		}
	}

	ecfg, err := evalconfig.Parse([]string{"--nats-url", ns.ClientURL(), "--clickhouse-database", ch.Database,
		"--clickhouse-addr", testenv.ClickHouseAddr(), "--http-addr", testenv.FreeAddr(t), "--evaluation-interval", "1s",
		"--criteria-file", "../../../deploy/evaluator/criteria.yaml", "--log-level", "warn"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := run(t, "evaluator", func(ctx context.Context) error { return evaluator.Run(ctx, ecfg, io.Discard) })
	base := "http://" + ecfg.HTTPAddr
	var list struct {
		Municipalities []struct {
			Municipality string `json:"municipality"`
			Level        int    `json:"level"`
			LevelName    string `json:"level_name"`
		} `json:"municipalities"`
	}
	testenv.Eventually(t, "first evaluation", 30*time.Second, func() bool {
		return getJSON(t, base+"/api/v1/municipalities", &list) == 200
	})
	if len(list.Municipalities) != len(want) {
		t.Fatalf("%d municipalities listed, want %d: %+v", len(list.Municipalities), len(want), list)
	}
	for _, s := range list.Municipalities {
		level := 0
		fmt.Sscanf(s.Municipality, "municipi-%d", &level)
		if s.Level != level || s.LevelName != maturity.LevelName(level) {
			t.Errorf("%s: level %d (%s), want %d", s.Municipality, s.Level, s.LevelName, level)
		}
	}
	// ?at= evaluates at exactly the instant the data was built for: the
	// verdict must be the rules' verdict on the input the events describe.
	cfg := maturity.DefaultConfig()
	for m, in := range want {
		expected, _ := json.Marshal(maturity.Evaluate(cfg, in))
		resp, err := http.Get(base + "/api/v1/municipalities/" + m + "/assessment?at=" + at.Format(time.RFC3339))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(bytes.TrimSpace(got), expected) {
			t.Errorf("%s: assessment differs from the rules' verdict\n got: %s\nwant: %s", m, got, expected)
		}
	}
	// Errors.
	if code := getJSON(t, base+"/api/v1/municipalities/nowhere/assessment", nil); code != 404 {
		t.Errorf("unknown municipality: %d", code)
	}
	if code := getJSON(t, base+"/api/v1/municipalities/Bad.Name/assessment", nil); code != 400 {
		t.Errorf("invalid municipality: %d", code)
	}
	if code := getJSON(t, base+"/api/v1/municipalities/municipi-1/assessment?at=yesterday", nil); code != 400 {
		t.Errorf("invalid at: %d", code)
	}
	if resp, err := http.Post(base+"/api/v1/municipalities", "application/json", nil); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST: %v %v", err, resp)
	}

	// The providers' tool reads the same verdict from the running evaluator.
	kpictl := filepath.Join(t.TempDir(), "kpictl")
	if out, err := exec.Command("go", "build", "-C", "../../kpictl", "-o", kpictl, "./cmd/kpictl").CombinedOutput(); err != nil {
		t.Fatalf("build kpictl: %v\n%s", err, out)
	}
	out, err := exec.Command(kpictl, "assessment", "municipi-4", "--evaluator-url", base).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "level 4 gestionat") || !strings.Contains(string(out), "Missing for level 5") {
		t.Errorf("kpictl assessment: %v\n%s", err, out)
	}

	// Metrics.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for level := 0; level <= maturity.MaxLevel; level++ {
		line := fmt.Sprintf(`smartcity_maturity_level{municipality="municipi-%d"} %d`, level, level)
		if !bytes.Contains(metrics, []byte(line)) {
			t.Errorf("metrics lack %q", line)
		}
	}
	for _, line := range []string{
		`smartcity_maturity_criterion_passed{criterion="pilot",level="puntual",municipality="municipi-0"} 0`,
		`smartcity_maturity_criterion_passed{criterion="adaptive",level="optimitzat",municipality="municipi-5"} 1`,
		`smartcity_sla_compliance_ratio{kpi="containers-emptied-on-time",municipality="municipi-5",service="recollida-residus"} 0.99`,
		`smartcity_sla_objective_ratio{kpi="containers-emptied-on-time",municipality="municipi-5",service="recollida-residus"} 0.95`,
		`smartcity_service_info{area="environment",delivery="concession",municipality="municipi-5",provider="fcc-medi-ambient",service="recollida-residus"} 1`,
		`smartcity_unattributed_measurements{municipality="municipi-5"} 20`,
		`smartcity_unknown_municipality_measurements 1`,
		`smartcity_evaluation_duration_seconds_count`,
		`smartcity_evaluation_last_success_timestamp_seconds`,
	} {
		if !bytes.Contains(metrics, []byte(line)) {
			t.Errorf("metrics lack %q", line)
		}
	}
	// municipi-0 has no measurement in C: its services-integrated share has
	// data (0 of 6), but no SLA is measured, so service quality has none.
	if bytes.Contains(metrics, []byte(`smartcity_maturity_criterion_value{criterion="service_quality",level="optimitzat",municipality="municipi-0"}`)) {
		t.Error("a criterion without data must have no value series")
	}
	if bytes.Contains(metrics, []byte("desconegut")) {
		t.Error("a municipality that is not known has series")
	}
	if bytes.Contains(metrics, []byte("NaN")) {
		t.Error("metrics contain NaN")
	}
	promtool(t, metrics)

	// Level changes: announced once each (level 0 is where history starts).
	changes := func() int { return streamMsgs(ctx, js, history.AssessmentStream) }
	testenv.Eventually(t, "level changes", 20*time.Second, func() bool { return changes() == maturity.MaxLevel })
	s, _ := js.Stream(ctx, "SMARTCITY_ASSESSMENTS")
	msg, err := s.GetLastMsgForSubject(ctx, "assessment.municipi-4")
	if err != nil {
		t.Fatal(err)
	}
	var ce struct {
		Type string                   `json:"type"`
		Data contract.MaturityChanged `json:"data"`
	}
	if err := json.Unmarshal(msg.Data, &ce); err != nil || ce.Type != contract.TypeMaturityChanged || ce.Data.From != 0 || ce.Data.To != 4 ||
		len(ce.Data.Failing) == 0 {
		t.Fatalf("level change event: %v %+v", err, ce)
	}
	// A restart does not announce unchanged levels again, and drops the SLA
	// target tables an interrupted evaluation may have left.
	ev.stop()
	if err := ch.Exec(ctx, "CREATE TABLE `"+ch.Database+"`.sla_targets_1_2 (series UInt64, sign Float64, bound Float64) ENGINE = Join(ANY, LEFT, series)"); err != nil {
		t.Fatal(err)
	}
	ecfg.HTTPAddr = testenv.FreeAddr(t)
	run(t, "evaluator again", func(ctx context.Context) error { return evaluator.Run(ctx, ecfg, io.Discard) })
	testenv.Eventually(t, "evaluation after restart", 30*time.Second, func() bool {
		return getJSON(t, "http://"+ecfg.HTTPAddr+"/api/v1/municipalities", nil) == 200
	})
	time.Sleep(2 * time.Second)
	if n := changes(); n != maturity.MaxLevel {
		t.Fatalf("%d level-change events after restart, want %d", n, maturity.MaxLevel)
	}
	var left uint64
	if err := ch.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'sla_targets_1_2'", ch.Database).Scan(&left); err != nil || left != 0 {
		t.Fatalf("the leftover SLA target table is still there after restart (%d, %v)", left, err)
	}
}

// promtool checks the exposition with `promtool check metrics`: no errors,
// no warnings.
func promtool(t *testing.T, metrics []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is needed (Debian package prometheus; `make test` installs it)")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(metrics)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// streamMsgs is how many messages a stream holds, -1 when it cannot tell.
func streamMsgs(ctx context.Context, js jetstream.JetStream, name string) int {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.State.Msgs)
}
