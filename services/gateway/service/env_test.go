package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/gateway/config"
	"github.com/assoliment/assoliment/services/gateway/service"
	"github.com/assoliment/assoliment/services/gateway/tokens"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// The tokens every test environment starts with.
const (
	provider     = "fcc-medi-ambient"  // sabadell and terrassa
	otherCompany = "aigues-del-ripoll" // sabadell
)

// env is one gateway running against an embedded NATS server with the
// platform's streams.
type env struct {
	ns     *server.Server
	js     jetstream.JetStream
	url    string // http://host:port
	file   string // tokens file
	tokens map[string]string
	reload chan os.Signal
	cfg    config.Config
}

// start runs a gateway; args are extra flags.
func start(t *testing.T, args ...string) *env {
	t.Helper()
	ns := testenv.NATS(t)
	return startOn(t, ns, args...)
}

func startOn(t *testing.T, ns *server.Server, args ...string) *env {
	t.Helper()
	e := &env{ns: ns, js: mustJS(t, testenv.Connect(t, ns)), tokens: map[string]string{}, reload: make(chan os.Signal, 1)}
	createStreams(t, e.js)
	e.file = filepath.Join(t.TempDir(), "tokens.yaml")
	e.writeTokens(t, map[string][]string{provider: {"sabadell", "terrassa"}, otherCompany: {"sabadell"}, contract.Council: {"sabadell"}})
	addr := testenv.FreeAddr(t)
	cfg, err := config.Parse(append([]string{"--nats-url", ns.ClientURL(), "--http-addr", addr,
		"--tokens-file", e.file, "--log-level", "warn"}, args...), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	e.cfg, e.url = cfg, "http://"+addr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg, testLog{t}, e.reload) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	testenv.Eventually(t, "the gateway to listen", 10*time.Second, func() bool {
		r, err := http.Get(e.url + "/readyz")
		if err == nil {
			r.Body.Close()
		}
		return err == nil && r.StatusCode == 200
	})
	return e
}

// writeTokens writes a tokens file with a fresh token per publisher, the
// way an editor saves: to a temporary file, then renamed over the old one.
func (e *env) writeTokens(t *testing.T, scopes map[string][]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("tokens:\n")
	for p, munis := range scopes {
		tok, entry, err := tokens.New(p, munis)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[p] = tok
		b.WriteString(entry.YAML())
	}
	writeFile(t, e.file, b.String())
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(b []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func mustJS(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// createStreams creates the platform's import and main streams as the
// ingest service does.
func createStreams(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, sc := range []jetstream.StreamConfig{contract.ImportStreamConfig(), contract.StreamConfig(contract.Stream)} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			t.Fatalf("stream %s: %v", sc.Name, err)
		}
	}
}

// measurement is a valid measurement event of publisher in municipality.
// It never fails a test, so goroutines may call it.
func measurement(_ testing.TB, id, municipality, publisher string) []byte {
	b, err := contract.Marshal(&contract.Event{
		ID: id, Source: "urn:provider:" + publisher, Type: contract.TypeKPIMeasured,
		Time: time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond), Municipality: municipality, Publisher: publisher,
		Data: &contract.KPIMeasured{Service: "waste-collection", KPI: "containers-emptied-on-time", Value: 0.991},
	})
	if err != nil {
		panic(err) // a fixed, valid event
	}
	return b
}

func marshal(t testing.TB, ev *contract.Event) []byte {
	t.Helper()
	b, err := contract.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answer is an HTTP answer.
type answer struct {
	code   int
	header http.Header
	body   []byte
}

func (a answer) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v\n%s", a.code, err, a.body)
	}
}

// problem checks an error answer: its code, a JSON body with a reason and
// a detail.
func (a answer) problem(t testing.TB, code int, reason string) string {
	t.Helper()
	var p struct{ Reason, Detail string }
	a.decode(t, &p)
	if a.code != code || p.Reason != reason || p.Detail == "" {
		t.Fatalf("got %d %s, want %d with reason %q", a.code, a.body, code, reason)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	return p.Detail
}

// post sends body to the events endpoint with token (none when empty).
func (e *env) post(t testing.TB, token, contentType string, body []byte, headers ...string) answer {
	t.Helper()
	a, err := e.tryPost(token, contentType, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// tryPost is post for goroutines: it returns the error instead of failing.
func (e *env) tryPost(token, contentType string, body []byte, headers ...string) (answer, error) {
	req, err := http.NewRequest(http.MethodPost, e.url+"/api/v1/events", bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("POST %s: %w", req.URL, err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return answer{code: r.StatusCode, header: r.Header, body: b}, err
}

func do(t testing.TB, req *http.Request) answer {
	t.Helper()
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{code: r.StatusCode, header: r.Header, body: b}
}

// stored returns the last message stored on subject.
func (e *env) stored(t testing.TB, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, contract.Stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("nothing stored on %s: %v", subject, err)
	}
	return m
}

// storedIDs reads every message of the main stream and returns the
// Nats-Msg-Id of each, with how many times it is there.
func (e *env) storedIDs(t testing.TB) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, contract.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	if info.State.Msgs == 0 {
		return ids
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for n := uint64(0); n < info.State.Msgs; {
		batch, err := c.FetchNoWait(1000)
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			ids[m.Headers().Get(nats.MsgIdHdr)]++
			n++
		}
		if batch.Error() != nil {
			t.Fatal(batch.Error())
		}
	}
	return ids
}

// metric returns the value of the series of name whose labels contain
// every one of labels ("key=\"value\"").
func (e *env) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	r, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
next:
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v
	}
	return 0
}

// runOnce runs a gateway with the tokens file and returns what Run
// returned; it is stopped after 30 s if it starts.
func runOnce(t *testing.T, ns *server.Server, file string) error {
	t.Helper()
	cfg, err := config.Parse([]string{"--nats-url", ns.ClientURL(), "--http-addr", testenv.FreeAddr(t),
		"--tokens-file", file}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return service.Run(ctx, cfg, testLog{t}, nil)
}

// get returns the status of GET path.
func (e *env) get(t testing.TB, path string) int {
	t.Helper()
	r, err := http.Get(e.url + path)
	if err != nil {
		return 0
	}
	r.Body.Close()
	return r.StatusCode
}
