package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/apiv1"
	"github.com/assoliment/assoliment/services/evaluator/internal/api"
	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/platform/httpserver"
)

var now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// fake is an engine with a fixed snapshot; an evaluation at hold reports
// on started and waits for release, so a test can keep on-demand
// evaluations running.
type fake struct {
	mu       sync.Mutex
	snap     *engine.Snapshot
	err      error
	hold     time.Time
	started  chan time.Time
	release  chan struct{}
	calledAt []time.Time
}

func (f *fake) Latest() *engine.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fake) EvaluateOne(ctx context.Context, at time.Time, m string) (*maturity.Assessment, bool, error) {
	f.mu.Lock()
	f.calledAt = append(f.calledAt, at)
	f.mu.Unlock()
	if !f.hold.IsZero() && at.Equal(f.hold) {
		f.started <- at
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, false, f.err
	}
	if m == "nowhere" {
		return nil, false, nil
	}
	a := maturity.Evaluate(maturity.DefaultConfig(), maturity.SampleInput(m, 3, at))
	return &a, true, nil
}

func snapshot(levels map[string]int) *engine.Snapshot {
	s := &engine.Snapshot{At: now, Completed: now.Add(time.Second), Results: map[string]*engine.Result{}}
	for m, l := range levels {
		s.Results[m] = &engine.Result{Assessment: maturity.Evaluate(maturity.DefaultConfig(), maturity.SampleInput(m, l, now))}
	}
	return s
}

func server(t *testing.T, f *fake, maxOnDemand int) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	api.Routes(mux, f, api.Options{MaxOnDemand: maxOnDemand, Now: func() time.Time { return now }}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(httpserver.ReadOnly(mux))
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	code   int
	header http.Header
	body   []byte
}

func get(t *testing.T, url string) answer {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// errorIs checks a JSON error answer: status, content type and message.
func errorIs(t *testing.T, what string, a answer, code int, msg string) {
	t.Helper()
	var e apiv1.Error
	if a.code != code || a.header.Get("Content-Type") != "application/json" || json.Unmarshal(a.body, &e) != nil || !strings.Contains(e.Error, msg) {
		t.Errorf("%s: %d %q %s; want %d with an error containing %q", what, a.code, a.header.Get("Content-Type"), a.body, code, msg)
	}
}

func TestHealth(t *testing.T) {
	f := &fake{}
	srv := server(t, f, 2)
	if a := get(t, srv.URL+"/healthz"); a.code != 200 || string(a.body) != "ok\n" {
		t.Errorf("healthz: %d %q", a.code, a.body)
	}
	if a := get(t, srv.URL+"/readyz"); a.code != 503 || !strings.Contains(string(a.body), "no evaluation has completed yet") {
		t.Errorf("readyz before the first evaluation: %d %q", a.code, a.body)
	}
	f.mu.Lock()
	f.snap = snapshot(nil)
	f.mu.Unlock()
	if a := get(t, srv.URL+"/readyz"); a.code != 200 || string(a.body) != "ready\n" {
		t.Errorf("readyz: %d %q", a.code, a.body)
	}
}

func TestBeforeFirstEvaluation(t *testing.T) {
	srv := server(t, &fake{}, 2)
	errorIs(t, "list", get(t, srv.URL+"/api/v1/municipalities"), 503, "no evaluation has completed yet")
	errorIs(t, "assessment", get(t, srv.URL+"/api/v1/municipalities/vic/assessment"), 503, "no evaluation has completed yet")
	// ?at= does not need the snapshot.
	if a := get(t, srv.URL+"/api/v1/municipalities/vic/assessment?at=2026-11-01T00:00:00Z"); a.code != 200 {
		t.Errorf("?at= before the first evaluation: %d %s", a.code, a.body)
	}
}

func TestList(t *testing.T) {
	f := &fake{snap: snapshot(map[string]int{"vic": 2, "granollers": 5, "la-garriga": 3})}
	srv := server(t, f, 2)
	a := get(t, srv.URL+"/api/v1/municipalities")
	var l apiv1.List
	if a.code != 200 || json.Unmarshal(a.body, &l) != nil {
		t.Fatalf("%d %s", a.code, a.body)
	}
	want := []apiv1.Summary{
		{Municipality: "granollers", Level: 5, LevelName: "optimitzat", EvaluatedAt: now},
		{Municipality: "la-garriga", Level: 3, LevelName: "estrategia", EvaluatedAt: now},
		{Municipality: "vic", Level: 2, LevelName: "collaboracio", EvaluatedAt: now},
	}
	if !l.EvaluatedAt.Equal(now) || len(l.Municipalities) != len(want) {
		t.Fatalf("%+v", l)
	}
	for i := range want {
		if l.Municipalities[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, l.Municipalities[i], want[i])
		}
	}
	f.mu.Lock()
	f.snap = snapshot(nil)
	f.mu.Unlock()
	if a := get(t, srv.URL+"/api/v1/municipalities"); a.code != 200 || !strings.Contains(string(a.body), `"municipalities":[]`) {
		t.Errorf("empty list: %d %s", a.code, a.body)
	}
}

func TestAssessment(t *testing.T) {
	f := &fake{snap: snapshot(map[string]int{"vic": 4})}
	srv := server(t, f, 2)
	a := get(t, srv.URL+"/api/v1/municipalities/vic/assessment")
	var got apiv1.Assessment
	if a.code != 200 || json.Unmarshal(a.body, &got) != nil {
		t.Fatalf("%d %s", a.code, a.body)
	}
	want, _ := json.Marshal(f.snap.Results["vic"].Assessment)
	if strings.TrimSpace(string(a.body)) != string(want) {
		t.Errorf("assessment differs from the snapshot's\n got %s\nwant %s", a.body, want)
	}
	if got.Level != 4 || got.WindowSeconds != 30*86400 || len(got.Criteria) != 17 || len(got.Missing) == 0 {
		t.Errorf("decoded: level %d, window %d, %d criteria, %d missing", got.Level, got.WindowSeconds, len(got.Criteria), len(got.Missing))
	}
	errorIs(t, "unknown", get(t, srv.URL+"/api/v1/municipalities/vilanova/assessment"), 404, "unknown municipality vilanova")
	errorIs(t, "bad slug", get(t, srv.URL+"/api/v1/municipalities/Bad.Name/assessment"), 400, "municipality must match")
	errorIs(t, "long slug", get(t, srv.URL+"/api/v1/municipalities/"+strings.Repeat("a", 64)+"/assessment"), 400, "municipality must match")
	errorIs(t, "other path", get(t, srv.URL+"/api/v2/municipalities"), 404, "no such endpoint")
	errorIs(t, "other path under v1", get(t, srv.URL+"/api/v1/municipalities/vic"), 404, "no such endpoint")
	resp, err := http.Post(srv.URL+"/api/v1/municipalities", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestAt(t *testing.T) {
	f := &fake{snap: snapshot(map[string]int{"vic": 4})}
	srv := server(t, f, 2)
	base := srv.URL + "/api/v1/municipalities/vic/assessment?at="
	a := get(t, base+"2026-10-01T02:00:00%2B02:00")
	var got apiv1.Assessment
	if a.code != 200 || json.Unmarshal(a.body, &got) != nil || !got.At.Equal(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) || got.At.Location() != time.UTC {
		t.Errorf("?at= with an offset: %d %s", a.code, a.body)
	}
	for _, bad := range []string{"", "yesterday", "2026-10-01", "2026-10-01T00:00:00"} {
		errorIs(t, "at="+bad, get(t, base+bad), 400, "at must be an RFC 3339 timestamp")
	}
	rangeMsg := "at must be between 2000-01-01T00:00:00Z and 2026-11-21T12:00:00Z"
	for _, out := range []string{"0001-01-01T00:00:00Z", "1999-12-31T23:59:59.999999999Z", "2026-11-21T12:00:00.000000001Z", "9999-12-31T23:59:59Z"} {
		errorIs(t, "at="+out, get(t, base+out), 400, rangeMsg)
	}
	for _, edge := range []string{"2000-01-01T00:00:00Z", "2026-11-21T12:00:00Z"} {
		if a := get(t, base+edge); a.code != 200 {
			t.Errorf("at=%s, on the edge of the range: %d %s", edge, a.code, a.body)
		}
	}
	errorIs(t, "unknown at T", get(t, srv.URL+"/api/v1/municipalities/nowhere/assessment?at=2026-11-01T00:00:00Z"), 404, "unknown municipality nowhere")
	f.err = errors.New("clickhouse unreachable")
	errorIs(t, "failed", get(t, base+"2026-11-01T00:00:00Z"), 503, "evaluation failed")
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.calledAt); n != 5 {
		t.Errorf("%d on-demand evaluations ran, want 5 (refused requests must not evaluate)", n)
	}
}

// TestAtConcurrencyBound holds MaxOnDemand evaluations running: one more
// is refused at once with 429 and Retry-After, the snapshot is still
// served meanwhile, and once one ends a new one is accepted.
func TestAtConcurrencyBound(t *testing.T) {
	hold := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	f := &fake{snap: snapshot(map[string]int{"vic": 4}), hold: hold, started: make(chan time.Time, 10), release: make(chan struct{})}
	srv := server(t, f, 2)
	url := srv.URL + "/api/v1/municipalities/vic/assessment?at=" + hold.Format(time.RFC3339)
	done := make(chan answer, 3)
	for range 2 {
		go func() {
			resp, err := http.Get(url)
			if err != nil {
				done <- answer{}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			done <- answer{code: resp.StatusCode, body: b}
		}()
	}
	<-f.started
	<-f.started
	a := get(t, url)
	errorIs(t, "third at once", a, 429, "2 on-demand evaluations are running already")
	if a.header.Get("Retry-After") != "5" {
		t.Errorf("Retry-After %q, want 5", a.header.Get("Retry-After"))
	}
	if a := get(t, srv.URL+"/api/v1/municipalities/vic/assessment"); a.code != 200 {
		t.Errorf("snapshot while on-demand slots are full: %d", a.code)
	}
	f.release <- struct{}{}
	if a := <-done; a.code != 200 {
		t.Errorf("held evaluation: %d %s", a.code, a.body)
	}
	if a := get(t, srv.URL+"/api/v1/municipalities/vic/assessment?at=2026-11-02T00:00:00Z"); a.code != 200 {
		t.Errorf("after one ended: %d %s", a.code, a.body)
	}
	f.release <- struct{}{}
	if a := <-done; a.code != 200 {
		t.Errorf("second held evaluation: %d %s", a.code, a.body)
	}
}
