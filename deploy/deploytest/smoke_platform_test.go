package deploytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Helpers of TestSmoke: building the services, running them and Prometheus
// as processes, and talking to Prometheus' HTTP API.

// stopGrace is how long a process may take to exit after SIGINT before it
// is killed.
const stopGrace = 10 * time.Second

// prometheusBinary returns the Prometheus server ($PROMETHEUS,
// /usr/bin/prometheus or the one on PATH) and fails the test when there is
// none: the smoke test is not optional.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMETHEUS"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus"
	}
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	t.Fatal("the Prometheus server is not installed (/usr/bin/prometheus): the dashboards and rules cannot be run against a live platform. " +
		"Install it (Debian: apt-get install prometheus, which `make test` does) or set PROMETHEUS to its path.")
	return ""
}

// clickHouseAddr returns the ClickHouse server of the tests
// ($CLICKHOUSE_ADDR, default 127.0.0.1:9000) and fails when it does not
// accept connections.
func clickHouseAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("CLICKHOUSE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("ClickHouse does not answer on %s (%v): start it with `make clickhouse` (`make test` does) or set CLICKHOUSE_ADDR", addr, err)
	}
	c.Close()
	return addr
}

// clickHouseQuery runs one statement with clickhouse-client, which the OS
// packages install next to the server.
func clickHouseQuery(addr, query string) error {
	_, err := clickHouseOutput(addr, "default", query)
	return err
}

// clickHouseOutput runs a query in database db with clickhouse-client and
// returns its output as tab-separated values.
func clickHouseOutput(addr, db, query string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	client, err := exec.LookPath("clickhouse-client")
	if err != nil {
		return "", fmt.Errorf("clickhouse-client is not installed: %w", err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(client, "--host", host, "--port", port, "--database", db, "--format", "TSV", "--query", query)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", query, err, stderr.Bytes())
	}
	return stdout.String(), nil
}

// buildServices builds cmd/<name> of each services/<module> into dir, all
// at once, with the repository's go.work applying (GOWORK removed from the
// environment of this module's tests).
func buildServices(t *testing.T, dir string, modules map[string]string) map[string]string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the services: %v", err)
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOWORK=") })
	bins := map[string]string{}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	for name, module := range modules {
		bin := filepath.Join(dir, name)
		bins[name] = bin
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(goBin, "build", "-C", repoPath(t, "services", module), "-o", bin, "./cmd/"+name)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("go build services/%s/cmd/%s: %v\n%s", module, name, err, out))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(strings.Join(errs, "\n"))
	}
	return bins
}

// dialTCP opens a TCP connection to addr, giving up after a second.
func dialTCP(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, time.Second) }

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a process started by the smoke test, logging to a file.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit status, once done is closed
}

// platform is every process of one smoke run.
type platform struct {
	logDir string
	procs  []*proc
}

// start runs bin with args, its output in <logDir>/<name>.log, and stops it
// at the end of the test: SIGINT, then SIGKILL after stopGrace. Processes
// stop in the reverse order of their start. A process that exited on its
// own, or not cleanly, fails the test.
func (p *platform) start(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(p.logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = p.logDir
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	pr := &proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		pr.err = cmd.Wait()
		f.Close()
		close(pr.done)
	}()
	p.procs = append(p.procs, pr)
	t.Cleanup(func() { pr.stop(t) })
	return pr
}

func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

func (pr *proc) stop(t *testing.T) {
	if pr.exited() {
		t.Errorf("%s exited before the end of the test: %v (log: %s)", pr.name, pr.err, pr.log)
		return
	}
	_ = pr.cmd.Process.Signal(os.Interrupt)
	select {
	case <-pr.done:
		if pr.err != nil {
			t.Errorf("%s did not exit cleanly after SIGINT: %v", pr.name, pr.err)
		}
	case <-time.After(stopGrace):
		_ = pr.cmd.Process.Signal(syscall.SIGKILL)
		<-pr.done
		t.Errorf("%s did not stop within %s of SIGINT and was killed", pr.name, stopGrace)
	}
}

// checkAlive fails the test at once when a process has exited.
func (p *platform) checkAlive(t *testing.T) {
	t.Helper()
	for _, pr := range p.procs {
		if pr.exited() {
			t.Fatalf("%s exited: %v\n%s", pr.name, pr.err, tail(pr.log, 30))
		}
	}
}

// dumpLogs prints the end of every log; registered so that it runs after
// the processes stopped, and only when the test failed.
func (p *platform) dumpLogs(t *testing.T) {
	if !t.Failed() {
		return
	}
	for _, pr := range p.procs {
		t.Logf("--- last lines of %s ---\n%s", pr.name, tail(pr.log, 20))
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every 250 ms until it holds, failing after timeout with
// the last state cond described. It fails at once if a process exited.
func (p *platform) waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.checkAlive(t)
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// getJSON decodes the JSON body of a GET into v; a non-2xx status is an
// error carrying the body.
func getJSON(u string, v any) error {
	resp, err := httpClient.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: status %s, body %.200q: %v", u, resp.Status, b, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: status %s: %s", u, resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

// smokePromConfig turns the shipped prometheus.yml into the smoke run's: the
// same jobs and settings, but each job scraping the addresses in targets,
// 1 s scrape and evaluation intervals, and the rule files resolved to the
// repository's deploy/prometheus/rules. A job the test does not know fails
// the test, so that a new job gets a process here.
func smokePromConfig(t *testing.T, targets map[string][]string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		global = map[string]any{}
		cfg["global"] = global
	}
	global["scrape_interval"] = "1s"
	global["scrape_timeout"] = "1s"
	global["evaluation_interval"] = "1s"

	// Alerts are delivered in TestAlertDelivery; here they are only queried.
	delete(cfg, "alerting")

	dir := repoPath(t, "deploy", "prometheus")
	var rules []any
	for _, pattern := range loadPromConfig(t).RuleFiles {
		rules = append(rules, filepath.Join(dir, pattern))
	}
	cfg["rule_files"] = rules

	scrapes, _ := cfg["scrape_configs"].([]any)
	seen := map[string]bool{}
	for _, s := range scrapes {
		sc, _ := s.(map[string]any)
		job, _ := sc["job_name"].(string)
		addrs, ok := targets[job]
		if !ok {
			t.Fatalf("prometheus.yml scrapes job %q, which the smoke test does not start; add it to TestSmoke", job)
		}
		seen[job] = true
		sc["static_configs"] = []any{map[string]any{"targets": addrs}}
		sc["scrape_interval"] = "1s"
		sc["scrape_timeout"] = "1s"
	}
	for job := range targets {
		if !seen[job] {
			t.Fatalf("prometheus.yml has no job %q", job)
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// promAPI is the HTTP API of one Prometheus server.
type promAPI struct{ base string }

// promSample is one element of an instant query's result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// query runs an instant query at ts and returns its series (a scalar result
// counts as one series without labels). API errors and warnings are errors.
func (p promAPI) query(expr string, ts time.Time) ([]promSample, error) {
	var r struct {
		Status    string   `json:"status"`
		Error     string   `json:"error"`
		ErrorType string   `json:"errorType"`
		Warnings  []string `json:"warnings"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	u := p.base + "/api/v1/query?" + url.Values{
		"query": {expr},
		"time":  {fmt.Sprintf("%.3f", float64(ts.UnixMilli())/1000)},
	}.Encode()
	if err := getJSON(u, &r); err != nil {
		if r.Error != "" {
			return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
		}
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	if len(r.Warnings) > 0 {
		return nil, fmt.Errorf("warnings: %s", strings.Join(r.Warnings, "; "))
	}
	switch r.Data.ResultType {
	case "vector":
		var v []promSample
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return nil, err
		}
		return v, nil
	case "scalar":
		var v []any
		if err := json.Unmarshal(r.Data.Result, &v); err != nil {
			return nil, err
		}
		return []promSample{{Metric: map[string]string{}, Value: v}}, nil
	default:
		return nil, fmt.Errorf("result type %s, want vector or scalar", r.Data.ResultType)
	}
}

// ruleGroup is a group of /api/v1/rules.
type ruleGroup struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Rules []struct {
		Name           string    `json:"name"`
		Type           string    `json:"type"`
		Health         string    `json:"health"`
		LastError      string    `json:"lastError"`
		LastEvaluation time.Time `json:"lastEvaluation"`
	} `json:"rules"`
}

func (p promAPI) rules() ([]ruleGroup, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Groups []ruleGroup `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(p.base+"/api/v1/rules", &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("/api/v1/rules: status %s", r.Status)
	}
	return r.Data.Groups, nil
}

// describe prints up to three series of a result for messages.
func describe(samples []promSample) string {
	var parts []string
	for i, s := range samples {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("… %d in all", len(samples)))
			break
		}
		var ls []string
		for k, v := range s.Metric {
			ls = append(ls, k+"="+v)
		}
		slices.Sort(ls)
		val := ""
		if len(s.Value) == 2 {
			val, _ = s.Value[1].(string)
		}
		parts = append(parts, "{"+strings.Join(ls, ",")+"} "+val)
	}
	return strings.Join(parts, "; ")
}
