package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
)

const now = "2026-11-20T12:00:00Z"

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, getenv map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), Env{Args: args, Getenv: func(k string) string { return getenv[k] }, Stdout: &out, Stderr: &errb})
	return result{code, out.String(), errb.String()}
}

// invalidFile is testdata/invalid.jsonl plus a line over 64 KiB.
func invalidFile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../testdata/invalid.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	big := fmt.Sprintf(`{"specversion":"1.0","id":"big","source":"urn:provider:fcc-medi-ambient","type":"cat.smartcity.kpi.measured.v1","time":"2026-11-20T11:00:00Z","municipality":"sabadell","publisher":"fcc-medi-ambient","padding":%q,"data":{"service":"waste-collection","kpi":"k","value":1}}`,
		strings.Repeat("x", contract.MaxMessageSize))
	p := filepath.Join(t.TempDir(), "invalid.jsonl")
	if err := os.WriteFile(p, append(b, []byte(big+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateReportsEachReasonWithItsLine(t *testing.T) {
	p := invalidFile(t)
	r := run(t, nil, "validate", "--now", now, p)
	if r.code != ExitFailed {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	want := map[contract.Reason]int{
		contract.ReasonMalformedJSON: 2, contract.ReasonNotCloudEvent: 4, contract.ReasonUnsupportedSpecVersion: 5,
		contract.ReasonMissingField: 6, contract.ReasonUnknownType: 7, contract.ReasonInvalidField: 8,
		contract.ReasonForbiddenPublisher: 9, contract.ReasonNonFiniteValue: 10, contract.ReasonFutureTime: 11,
		contract.ReasonTooLate: 12, contract.ReasonTooLarge: 13,
	}
	out := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(out) != len(want) {
		t.Fatalf("%d reports, want %d:\n%s", len(out), len(want), r.stdout)
	}
	for reason, line := range want {
		prefix := fmt.Sprintf("%s:%d: %s: ", p, line, reason)
		found := false
		for _, l := range out {
			found = found || strings.HasPrefix(l, prefix)
		}
		if !found {
			t.Errorf("no line starting %q in:\n%s", prefix, r.stdout)
		}
	}
	// A subject mismatch needs the subject the events travel on.
	r = run(t, nil, "validate", "--now", now, "--subject", "smartcity.sabadell.council.measurement", "../testdata/examples.jsonl")
	if r.code != ExitFailed || !strings.Contains(r.stdout, "examples.jsonl:3: subject_mismatch: ") {
		t.Fatalf("subject mismatch: exit %d\n%s", r.code, r.stdout)
	}
	// Together the two runs cover every reason of the contract.
	for _, reason := range contract.Reasons {
		if _, ok := want[reason]; !ok && reason != contract.ReasonSubjectMismatch {
			t.Errorf("reason %s not covered", reason)
		}
	}
}

func TestValidateExamplesAndErrors(t *testing.T) {
	r := run(t, nil, "validate", "../testdata/examples.jsonl", "--now", now)
	if r.code != ExitOK || r.stdout != "" || !strings.Contains(r.stderr, "6 events checked: 6 valid, 0 invalid") {
		t.Fatalf("%+v", r)
	}
	r = run(t, nil, "validate", "../testdata/no-such-file.jsonl")
	if r.code != ExitUsageIO || !strings.Contains(r.stderr, "no-such-file") {
		t.Fatalf("%+v", r)
	}
	if r := run(t, nil, "validate"); r.code != ExitUsageIO {
		t.Fatalf("no files: %+v", r)
	}
	// One event pretty-printed over several lines, and a JSON array.
	dir := t.TempDir()
	b, _ := os.ReadFile("../testdata/examples.jsonl")
	first := strings.SplitN(string(b), "\n", 2)[0]
	var pretty bytes.Buffer
	_ = json.Indent(&pretty, []byte(first), "", "  ")
	_ = os.WriteFile(filepath.Join(dir, "one.json"), pretty.Bytes(), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "arr.json"), []byte("[\n"+strings.Join(strings.Split(strings.TrimSpace(string(b)), "\n"), ",\n")+"\n]"), 0o644)
	r = run(t, nil, "validate", "--now", now, filepath.Join(dir, "one.json"), filepath.Join(dir, "arr.json"))
	if r.code != ExitOK || !strings.Contains(r.stderr, "7 events checked: 7 valid") {
		t.Fatalf("%+v", r)
	}
}

func startNATS(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: contract.Stream, Subjects: []string{contract.StreamSubjects},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: contract.DeadLetterStream,
		Subjects: []string{contract.DeadLetterPrefix + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	return s.ClientURL(), js
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := s.GetMsg(context.Background(), seq, jetstream.WithGetMsgSubject(">"))
		if err != nil {
			return out
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

func TestPublish(t *testing.T) {
	url, js := startNATS(t)
	env := map[string]string{"NATS_URL": url}
	r := run(t, env, "publish", "--now", now, "../testdata/examples.jsonl")
	if r.code != ExitOK || !strings.Contains(r.stdout, "6 events: 6 acked (0 duplicates dropped by the broker), 0 failed, 0 invalid") ||
		!strings.Contains(r.stderr, "sent 6/6 events") {
		t.Fatalf("%+v", r)
	}
	msgs := streamMsgs(t, js, contract.Stream)
	if len(msgs) != 6 {
		t.Fatalf("stream holds %d messages", len(msgs))
	}
	for _, m := range msgs {
		e, rej := contract.Decode(m.Subject, m.Data, contract.Rules{Now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)})
		if rej != nil || m.Header.Get(nats.MsgIdHdr) != e.ID {
			t.Fatalf("message on %s: %v", m.Subject, rej)
		}
	}
	// Again: the broker drops the copies, and says so.
	r = run(t, env, "publish", "--now", now, "../testdata/examples.jsonl")
	if r.code != ExitOK || !strings.Contains(r.stdout, "6 acked (6 duplicates") {
		t.Fatalf("%+v", r)
	}
	// Invalid events are reported and skipped...
	p := invalidFile(t)
	r = run(t, env, "publish", "--now", now, p)
	if r.code != ExitFailed || !strings.Contains(r.stdout, "12 events: 1 acked") || !strings.Contains(r.stdout, "11 invalid (11 skipped") ||
		!strings.Contains(r.stderr, ":13: too_large:") {
		t.Fatalf("%+v", r)
	}
	if n := len(streamMsgs(t, js, contract.Stream)); n != 7 {
		t.Fatalf("stream holds %d messages, want 7", n)
	}
	// ...unless --allow-invalid.
	r = run(t, env, "publish", "--now", now, "--allow-invalid", p)
	if r.code != ExitOK || !strings.Contains(r.stdout, "12 events: 12 acked (1 duplicates") {
		t.Fatalf("%+v", r)
	}
	if n := len(streamMsgs(t, js, contract.Stream)); n != 18 {
		t.Fatalf("stream holds %d messages, want 18", n)
	}
	// No server: an I/O error.
	if r := run(t, map[string]string{"NATS_URL": "nats://127.0.0.1:1"}, "publish", "../testdata/examples.jsonl"); r.code != ExitUsageIO {
		t.Fatalf("%+v", r)
	}
}

// deadLetter stores a dead letter the way the ingest service does.
func deadLetter(t *testing.T, js jetstream.JetStream, subject string, reason contract.Reason, body string, mainSeq int) {
	t.Helper()
	m := nats.NewMsg(contract.DeadLetterSubject(subject, reason))
	m.Data = []byte(body)
	m.Header.Set(contract.HeaderSubject, subject)
	m.Header.Set(contract.HeaderReason, string(reason))
	m.Header.Set(contract.HeaderDetail, "test detail")
	m.Header.Set(contract.HeaderStreamSeq, fmt.Sprint(mainSeq))
	m.Header.Set(contract.HeaderReceivedAt, "2026-11-20T11:00:01Z")
	m.Header.Set("Content-Type", "application/cloudevents+json")
	m.Header.Set(nats.MsgIdHdr, "orig-"+fmt.Sprint(mainSeq))
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func TestDLQListAndReplay(t *testing.T) {
	url, js := startNATS(t)
	env := map[string]string{"NATS_URL": url}
	ctx := context.Background()
	subj := "smartcity.sabadell.fcc-medi-ambient.measurement"
	body := func(id string) string {
		return `{"specversion":"1.0","id":"` + id + `","source":"urn:provider:fcc-medi-ambient","type":"cat.smartcity.kpi.measured.v1","time":"2026-11-20T11:00:00Z","municipality":"sabadell","publisher":"fcc-medi-ambient","data":{"service":"waste-collection","kpi":"containers-emptied-on-time","value":0.991}}`
	}
	// The original of the first dead letter went through the main stream
	// with its id as Nats-Msg-Id a moment ago: a replay must not be dropped.
	orig := nats.NewMsg(subj)
	orig.Data = []byte(body("m-1"))
	orig.Header.Set(nats.MsgIdHdr, "m-1")
	if _, err := js.PublishMsg(ctx, orig); err != nil {
		t.Fatal(err)
	}
	deadLetter(t, js, subj, contract.ReasonFutureTime, body("m-1"), 1)
	deadLetter(t, js, "smartcity.vic.council.catalog", contract.ReasonMalformedJSON, "{\"broken\n", 2)
	deadLetter(t, js, subj, contract.ReasonFutureTime, body("m-3"), 3)

	r := run(t, env, "dlq", "list")
	if r.code != ExitOK {
		t.Fatalf("%+v", r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[1], subj) ||
		!strings.Contains(lines[1], "future_time") || !strings.Contains(lines[1], "2026-11-20T11:00:01Z") ||
		!strings.Contains(lines[2], `{"broken.`) || !strings.Contains(lines[1], "…") {
		t.Fatalf("list:\n%s", r.stdout)
	}
	if !strings.Contains(lines[1], body("m-1")[:60]) {
		t.Fatalf("list does not show the first 60 bytes:\n%s", lines[1])
	}
	r = run(t, env, "dlq", "list", "--reason", "future_time", "--json")
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		got = append(got, m)
	}
	if len(got) != 2 || got[1]["seq"] != 3.0 || got[1]["data"] != body("m-3") {
		t.Fatalf("json list: %v", got)
	}
	if r := run(t, env, "dlq", "list", "--limit", "1"); strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("limit: %s", r.stdout)
	}
	// Listing consumed nothing.
	if n := len(streamMsgs(t, js, contract.DeadLetterStream)); n != 3 {
		t.Fatalf("after listing the DLQ holds %d", n)
	}

	r = run(t, env, "dlq", "replay", "--reason", "future_time", "--dry-run")
	if r.code != ExitOK || !strings.Contains(r.stdout, "2 dead letters would be replayed") {
		t.Fatalf("%+v", r)
	}
	if n := len(streamMsgs(t, js, contract.DeadLetterStream)); n != 3 {
		t.Fatalf("dry run changed the DLQ: %d", n)
	}
	r = run(t, env, "dlq", "replay", "--reason", "future_time")
	if r.code != ExitOK || !strings.Contains(r.stdout, "2 dead letters replayed") {
		t.Fatalf("%+v", r)
	}
	main := streamMsgs(t, js, contract.Stream)
	if len(main) != 3 {
		t.Fatalf("main stream holds %d messages, want the original and 2 replays", len(main))
	}
	for i, m := range main[1:] {
		want := body([]string{"m-1", "m-3"}[i])
		if m.Subject != subj || string(m.Data) != want || !strings.HasPrefix(m.Header.Get(nats.MsgIdHdr), "replay-") ||
			m.Header.Get(contract.HeaderReason) != "" || m.Header.Get("Content-Type") != "application/cloudevents+json" {
			t.Fatalf("replayed message %d: %s %s %v", i, m.Subject, m.Data, m.Header)
		}
	}
	// Dead letters stay after a replay: the stream allows no deletes.
	if left := streamMsgs(t, js, contract.DeadLetterStream); len(left) != 3 {
		t.Fatalf("DLQ left with %d, want all 3", len(left))
	}
	r = run(t, env, "dlq", "replay", "--seq", "2")
	if r.code != ExitOK || !strings.Contains(r.stdout, "1 dead letter replayed") || len(streamMsgs(t, js, contract.DeadLetterStream)) != 3 {
		t.Fatalf("%+v", r)
	}
	if r := run(t, env, "dlq", "replay", "--seq", "99"); r.code != ExitUsageIO || !strings.Contains(r.stderr, "no dead letter with sequence 99") {
		t.Fatalf("%+v", r)
	}
}

const assessmentJSON = `{"municipality":"sabadell","level":4,"level_name":"gestionat","at":"2026-11-20T12:00:00Z","window_seconds":2592000,
"criteria":[
 {"level":1,"level_name":"puntual","id":"pilot","passed":true,"value":8,"threshold":1,"threshold_text":">= 1","explanation":"8 services reported in the window"},
 {"level":5,"level_name":"optimitzat","id":"service_quality","passed":false,"value":0.7777777,"threshold":0.95,"threshold_text":">= 0.95","explanation":"7 of 9 measured SLAs met their objective"},
 {"level":5,"level_name":"optimitzat","id":"continuous_improvement","passed":false,"value":null,"threshold":1,"threshold_text":">= 1 SLA","explanation":"no SLA measured in both windows"}],
"missing":[
 {"level":5,"level_name":"optimitzat","id":"service_quality","passed":false,"value":0.7777777,"threshold":0.95,"threshold_text":">= 0.95","explanation":"7 of 9 measured SLAs met their objective"},
 {"level":5,"level_name":"optimitzat","id":"continuous_improvement","passed":false,"value":null,"threshold":1,"threshold_text":">= 1 SLA","explanation":"no SLA measured in both windows"}]}`

func TestAssessment(t *testing.T) {
	var lastQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		lastQuery = r.URL.RawQuery
		if r.URL.Path != "/api/v1/municipalities/sabadell/assessment" {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"unknown municipality"}`)
			return
		}
		fmt.Fprint(w, assessmentJSON)
	}))
	defer srv.Close()
	env := map[string]string{"EVALUATOR_URL": srv.URL}
	r := run(t, env, "assessment", "sabadell", "--at", "2026-11-20T12:00:00Z")
	if r.code != ExitOK || lastQuery != "at=2026-11-20T12%3A00%3A00Z" {
		t.Fatalf("%+v query %q", r, lastQuery)
	}
	for _, want := range []string{
		"sabadell: level 4 gestionat at 2026-11-20T12:00:00Z (window 30d)",
		"LEVEL", "CRITERION", "THRESHOLD", "EXPLANATION",
		"pilot", "pass", "8 services reported",
		"service_quality", "FAIL", "0.7778", ">= 0.95",
		"no data",
		"Missing for level 5 (optimitzat):",
		"  - service_quality (level 5): 0.7778, needs >= 0.95. 7 of 9 measured SLAs met their objective",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run(t, env, "assessment", "sabadell", "--json")
	var a map[string]any
	if r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &a) != nil || a["level_name"] != "gestionat" || lastQuery != "" {
		t.Fatalf("%+v", r)
	}
	r = run(t, env, "assessment", "atlantis")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "unknown municipality") {
		t.Fatalf("%+v", r)
	}
	if r := run(t, map[string]string{"EVALUATOR_URL": "http://127.0.0.1:1"}, "assessment", "sabadell"); r.code != ExitUsageIO {
		t.Fatalf("%+v", r)
	}
}
