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
	"github.com/assoliment/assoliment/services/platform/testenv"
)

const now = "2026-11-20T12:00:00Z"

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, getenv map[string]string, args ...string) result {
	t.Helper()
	return runStdin(t, getenv, "", args...)
}

func runStdin(t *testing.T, getenv map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), Env{Args: args, Getenv: func(k string) string { return getenv[k] },
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
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
	if r.code != ExitInvalid || r.stderr != "" {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	want := map[contract.Reason]int{
		contract.ReasonMalformedJSON: 2, contract.ReasonNotCloudEvent: 4, contract.ReasonUnsupportedSpecVersion: 5,
		contract.ReasonMissingField: 6, contract.ReasonUnknownType: 7, contract.ReasonInvalidField: 8,
		contract.ReasonForbiddenPublisher: 9, contract.ReasonNonFiniteValue: 10, contract.ReasonFutureTime: 11,
		contract.ReasonTooLate: 12, contract.ReasonTooLarge: 13,
	}
	out := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(out) != len(want)+1 || out[len(out)-1] != "12 events checked: 1 valid, 11 invalid" {
		t.Fatalf("%d lines, want %d reports and the counts:\n%s", len(out), len(want), r.stdout)
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
	if r.code != ExitInvalid || !strings.Contains(r.stdout, "examples.jsonl:3: subject_mismatch: ") {
		t.Fatalf("subject mismatch: exit %d\n%s", r.code, r.stdout)
	}
	// Together the two runs cover every reason of the contract.
	for _, reason := range contract.Reasons {
		if _, ok := want[reason]; !ok && reason != contract.ReasonSubjectMismatch {
			t.Errorf("reason %s not covered", reason)
		}
	}
}

func TestValidateFormsAndStdin(t *testing.T) {
	r := run(t, nil, "validate", "../testdata/examples.jsonl", "--now", now)
	if r.code != ExitOK || r.stdout != "6 events checked: 6 valid, 0 invalid\n" || r.stderr != "" {
		t.Fatalf("%+v", r)
	}
	// An unreadable file is a failure, reported on stderr; the others are
	// still checked.
	r = run(t, nil, "validate", "--now", now, "../testdata/no-such-file.jsonl", "../testdata/examples.jsonl")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "no-such-file") || !strings.Contains(r.stdout, "6 events checked") {
		t.Fatalf("%+v", r)
	}
	// One event pretty-printed over several lines, and a JSON array.
	dir := t.TempDir()
	b, err := os.ReadFile("../testdata/examples.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(b), "\n", 2)[0]
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, []byte(first), "", "  "); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "one.json"), pretty.String())
	writeFile(t, filepath.Join(dir, "arr.json"), "[\n"+strings.Join(strings.Split(strings.TrimSpace(string(b)), "\n"), ",\n")+"\n]")
	r = run(t, nil, "validate", "--now", now, filepath.Join(dir, "one.json"), filepath.Join(dir, "arr.json"))
	if r.code != ExitOK || !strings.Contains(r.stdout, "7 events checked: 7 valid") {
		t.Fatalf("%+v", r)
	}
	// Standard input, named stdin in reports.
	r = runStdin(t, nil, string(b)+"{\"specversion\":\"1.0\"\n", "validate", "--now", now, "-")
	if r.code != ExitInvalid || !strings.HasPrefix(r.stdout, "stdin:7: malformed_json: ") {
		t.Fatalf("%+v", r)
	}
	if r := run(t, nil, "validate", "-", "-"); r.code != ExitUsage || !strings.Contains(r.stderr, "only once") {
		t.Fatalf("stdin twice: %+v", r)
	}
}

func TestValidateJSON(t *testing.T) {
	r := run(t, nil, "validate", "--json", "--now", now, invalidFile(t))
	var got struct {
		Events, Valid, Invalid int
		Rejections             []Rejection
	}
	if r.code != ExitInvalid || json.Unmarshal([]byte(r.stdout), &got) != nil {
		t.Fatalf("%+v", r)
	}
	if got.Events != 12 || got.Valid != 1 || got.Invalid != 11 || len(got.Rejections) != 11 {
		t.Fatalf("%+v", got)
	}
	nf := got.Rejections[7]
	if nf.Line != 10 || nf.Reason != "non_finite_value" || nf.Subject != "smartcity.sabadell.fcc-medi-ambient.measurement" || nf.ID == "" || nf.Detail == "" {
		t.Fatalf("rejection %+v", nf)
	}
	r = run(t, nil, "validate", "--json", "--now", now, "../testdata/examples.jsonl")
	if r.code != ExitOK || !strings.Contains(r.stdout, `"rejections": []`) {
		t.Fatalf("%+v", r)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startNATS runs an embedded JetStream server with the platform's main and
// dead-letter streams.
func startNATS(t *testing.T) (*server.Server, jetstream.JetStream) {
	t.Helper()
	s := testenv.NATS(t)
	js := createStreams(t, testenv.Connect(t, s))
	return s, js
}

func createStreams(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, sc := range []jetstream.StreamConfig{contract.ImportStreamConfig(), contract.StreamConfig(contract.Stream),
		contract.DeadLetterStreamConfig(contract.DeadLetterStream)} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatalf("stream %s: %v", sc.Name, err)
		}
	}
	return js
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
	s, js := startNATS(t)
	env := map[string]string{"NATS_URL": s.ClientURL()}
	r := run(t, env, "publish", "--now", now, "../testdata/examples.jsonl")
	if r.code != ExitOK || r.stdout != "6 events: 6 acked (0 duplicates dropped by the broker), 0 failed, 0 invalid\n" ||
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
	// Again: stored again (the broker's duplicate window is off; the
	// platform deduplicates by identity).
	r = run(t, env, "publish", "--now", now, "../testdata/examples.jsonl")
	if r.code != ExitOK || !strings.Contains(r.stdout, "6 acked") {
		t.Fatalf("%+v", r)
	}
	// Invalid events are reported and skipped...
	p := invalidFile(t)
	r = run(t, env, "publish", "--now", now, p)
	if r.code != ExitInvalid || !strings.Contains(r.stdout, "12 events: 1 acked") || !strings.Contains(r.stdout, "11 invalid (11 skipped") ||
		!strings.Contains(r.stdout, ":13: too_large:") {
		t.Fatalf("%+v", r)
	}
	if n := len(streamMsgs(t, js, contract.Stream)); n != 13 {
		t.Fatalf("stream holds %d messages, want 13", n)
	}
	// ...unless --allow-invalid.
	r = run(t, env, "publish", "--now", now, "--allow-invalid", "--json", p)
	var rep struct {
		Events, Acked, Failed, Invalid int
		Failures                       []struct{ Subject, ID, Error string }
		Rejections                     []Rejection
	}
	if r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &rep) != nil {
		t.Fatalf("%+v", r)
	}
	if rep.Events != 12 || rep.Acked != 12 || rep.Failed != 0 || rep.Invalid != 11 || len(rep.Rejections) != 11 || len(rep.Failures) != 0 {
		t.Fatalf("%+v", rep)
	}
	if n := len(streamMsgs(t, js, contract.Stream)); n != 25 {
		t.Fatalf("stream holds %d messages, want 25", n)
	}
	// A message the stream refuses (over its message size) is a failure,
	// reported with the broker's reason.
	huge := filepath.Join(t.TempDir(), "huge.jsonl")
	writeFile(t, huge, strings.Replace(measurement("huge"), `"data"`, `"padding":"`+strings.Repeat("x", contract.MaxStoredMessage)+`","data"`, 1)+"\n")
	r = run(t, env, "publish", "--now", now, "--allow-invalid", "--json", huge)
	if r.code != ExitFailed || json.Unmarshal([]byte(r.stdout), &rep) != nil {
		t.Fatalf("%+v", r)
	}
	if rep.Failed != 1 || len(rep.Failures) != 1 || rep.Failures[0].ID != "huge" || rep.Failures[0].Subject != measurementSubject ||
		!strings.Contains(r.stderr, "event huge on "+measurementSubject+" not acknowledged: ") {
		t.Fatalf("%+v\n%s", rep, r.stderr)
	}
	// Standard input.
	b, err := os.ReadFile("../testdata/examples.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if r := runStdin(t, env, string(b), "publish", "--now", now, "-"); r.code != ExitOK || !strings.Contains(r.stdout, "6 acked") {
		t.Fatalf("stdin: %+v", r)
	}
	// No server: a failure, at once.
	if r := run(t, map[string]string{"NATS_URL": "nats://" + testenv.FreeAddr(t)}, "publish", "../testdata/examples.jsonl"); r.code != ExitFailed ||
		!strings.Contains(r.stderr, "kpictl: nats nats://") {
		t.Fatalf("%+v", r)
	}
}

// A websocket URL reaches a server's websocket listener.
func TestPublishOverWebsocket(t *testing.T) {
	port := testenv.FreePort(t)
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Websocket: server.WebsocketOpts{Host: "127.0.0.1", Port: port, NoTLS: true}})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	js := createStreams(t, testenv.Connect(t, s))
	r := run(t, nil, "publish", "--now", now, "--nats-url", fmt.Sprintf("ws://127.0.0.1:%d", port), "../testdata/examples.jsonl")
	if r.code != ExitOK || len(streamMsgs(t, js, contract.Stream)) != 6 {
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

func measurement(id string) string {
	return `{"specversion":"1.0","id":"` + id + `","source":"urn:provider:fcc-medi-ambient","type":"cat.smartcity.kpi.measured.v1","time":"2026-11-20T11:00:00Z","municipality":"sabadell","publisher":"fcc-medi-ambient","data":{"service":"waste-collection","kpi":"containers-emptied-on-time","value":0.991}}`
}

const measurementSubject = "smartcity.sabadell.fcc-medi-ambient.measurement"

func TestDLQListAndReplay(t *testing.T) {
	s, js := startNATS(t)
	env := map[string]string{"NATS_URL": s.ClientURL()}
	ctx := context.Background()
	subj := measurementSubject
	// The original of the first dead letter went through the main stream
	// with its id as Nats-Msg-Id a moment ago: a replay must not be dropped.
	orig := nats.NewMsg(subj)
	orig.Data = []byte(measurement("m-1"))
	orig.Header.Set(nats.MsgIdHdr, "m-1")
	if _, err := js.PublishMsg(ctx, orig); err != nil {
		t.Fatal(err)
	}
	deadLetter(t, js, subj, contract.ReasonFutureTime, measurement("m-1"), 1)
	deadLetter(t, js, "smartcity.vic.council.catalog", contract.ReasonMalformedJSON, "{\"broken\n", 2)
	deadLetter(t, js, subj, contract.ReasonFutureTime, measurement("m-3"), 3)

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
	if !strings.Contains(lines[1], measurement("m-1")[:60]) {
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
	if len(got) != 2 || got[1]["seq"] != 3.0 || got[1]["data"] != measurement("m-3") || got[1]["detail"] != "test detail" {
		t.Fatalf("json list: %v", got)
	}
	if r := run(t, env, "dlq", "list", "--limit", "1"); strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stderr, "--limit 0") {
		t.Fatalf("limit: %+v", r)
	}
	if r := run(t, env, "dlq", "list", "--reason", "too_late"); r.code != ExitOK || !strings.Contains(r.stdout, "no dead letters in SMARTCITY_DLQ with reason too_late") {
		t.Fatalf("%+v", r)
	}
	// A publisher's bytes never reach the operator's terminal as control
	// sequences: the table shows them as dots, JSON escapes them.
	deadLetter(t, js, subj, contract.ReasonMalformedJSON, "\x1b]0;owned\x07\x1b[2J\xff\xfe{", 4)
	r = run(t, env, "dlq", "list", "--reason", "malformed_json")
	if r.code != ExitOK || strings.ContainsAny(r.stdout, "\x1b\x07") || !strings.Contains(r.stdout, ".]0;owned..[2J.{") {
		t.Fatalf("hostile dead letter in the table: %q", r.stdout)
	}
	r = run(t, env, "dlq", "list", "--reason", "malformed_json", "--json")
	if r.code != ExitOK || strings.ContainsAny(r.stdout, "\x1b\x07") {
		t.Fatalf("hostile dead letter in JSON: %q", r.stdout)
	}

	r = run(t, env, "dlq", "replay", "--reason", "future_time", "--dry-run")
	if r.code != ExitOK || !strings.Contains(r.stdout, "would replay 1 "+subj) || !strings.Contains(r.stdout, "2 dead letters would be replayed") {
		t.Fatalf("%+v", r)
	}
	if n := len(streamMsgs(t, js, contract.Stream)); n != 1 {
		t.Fatalf("dry run published: main stream holds %d", n)
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
		want := measurement([]string{"m-1", "m-3"}[i])
		if m.Subject != subj || string(m.Data) != want || !strings.HasPrefix(m.Header.Get(nats.MsgIdHdr), "replay-") ||
			m.Header.Get(contract.HeaderReason) != "" || m.Header.Get("Content-Type") != "application/cloudevents+json" {
			t.Fatalf("replayed message %d: %s %s %v", i, m.Subject, m.Data, m.Header)
		}
	}
	// Dead letters stay after a replay: the stream allows no deletes.
	if left := streamMsgs(t, js, contract.DeadLetterStream); len(left) != 4 {
		t.Fatalf("DLQ left with %d, want all 4", len(left))
	}
	r = run(t, env, "dlq", "replay", "--seq", "2", "--json")
	var rep struct {
		Replayed, Failed int
		Letters          []struct {
			Seq     uint64
			Outcome string
		}
	}
	if r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &rep) != nil || rep.Replayed != 1 || len(rep.Letters) != 1 ||
		rep.Letters[0].Seq != 2 || rep.Letters[0].Outcome != "replayed" {
		t.Fatalf("%+v", r)
	}
	if r := run(t, env, "dlq", "replay", "--seq", "99"); r.code != ExitFailed || !strings.Contains(r.stderr, "no dead letter with sequence 99") {
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
	if r := run(t, map[string]string{"EVALUATOR_URL": "http://" + testenv.FreeAddr(t)}, "assessment", "sabadell"); r.code != ExitFailed {
		t.Fatalf("%+v", r)
	}
}

// Every usage problem exits 2 with the flag or variable, what it should
// be, and where to read more, on standard error.
func TestUsageErrors(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		args []string
		want []string
	}{
		{nil, []string{"frobnicate"}, []string{`unknown command "frobnicate"`, "kpictl --help"}},
		{nil, []string{"dlq"}, []string{"dlq needs a command: [list replay]", "kpictl dlq --help"}},
		{nil, []string{"dlq", "purge"}, []string{`unknown command "purge"`}},
		{nil, []string{"validate"}, []string{"one or more FILE arguments", "kpictl validate --help"}},
		{nil, []string{"validate", "--frobnicate", "f"}, []string{"frobnicate", "kpictl validate --help"}},
		{nil, []string{"validate", "--max-lateness", "213504d", "f"}, []string{"max-lateness", "from 1m0s to 3650d"}},
		{nil, []string{"validate", "--now", "noon", "f"}, []string{"now", "RFC 3339"}},
		{nil, []string{"validate", "--subject", "smartcity.sabadell", "f"}, []string{"subject", "smartcity.<municipality>.<publisher>.<kind>"}},
		{nil, []string{"publish", "--max-in-flight", "0", "f"}, []string{"max-in-flight", "from 1 to 65536"}},
		{map[string]string{"NATS_URL": "http://nope"}, []string{"publish", "f"}, []string{"NATS_URL", "nats://host:port"}},
		{map[string]string{"NATS_INBOX_PREFIX": "_INBOX.>"}, []string{"dlq", "list"}, []string{"NATS_INBOX_PREFIX", "without spaces or wildcards"}},
		{nil, []string{"dlq", "replay", "--reason", "bogus"}, []string{"reason", "too_large"}},
		{nil, []string{"dlq", "replay", "--seq", "0"}, []string{"seq", "from 1 on"}},
		{nil, []string{"dlq", "list", "--stream", "A.B"}, []string{"stream", "letters, digits"}},
		{nil, []string{"dlq", "list", "extra"}, []string{"no arguments", "extra"}},
		{nil, []string{"assessment"}, []string{"one MUNICIPALITY"}},
		{nil, []string{"assessment", "Sabadell!"}, []string{"municipality id"}},
		{map[string]string{"EVALUATOR_URL": "ftp://x"}, []string{"assessment", "vic"}, []string{"EVALUATOR_URL", "http(s) URL"}},
	} {
		r := run(t, c.env, c.args...)
		if r.code != ExitUsage || r.stdout != "" {
			t.Errorf("%q %v: %+v", c.args, c.env, r)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%q %v: stderr lacks %q:\n%s", c.args, c.env, w, r.stderr)
			}
		}
	}
}

func TestHelpVersionAndCompletion(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"help"}, {"help", "publish"}, {"validate", "--help"}, {"publish", "-h"},
		{"dlq", "--help"}, {"dlq", "list", "--help"}, {"dlq", "replay", "--help"}, {"assessment", "--help"}, {"token", "new", "--help"}} {
		r := run(t, nil, args...)
		if r.code != ExitOK || !strings.Contains(r.stdout, "USAGE") || r.stderr != "" {
			t.Errorf("%q: %+v", args, r)
		}
		if len(args) > 0 && args[0] != "help" && args[0] != "--help" && args[0] != "dlq" || len(args) > 2 {
			if !strings.Contains(r.stdout, "Examples") {
				t.Errorf("%q: help without examples:\n%s", args, r.stdout)
			}
		}
	}
	if r := run(t, nil, "publish", "--help"); !strings.Contains(r.stdout, "$NATS_CREDS") || !strings.Contains(r.stdout, "--inbox-prefix") ||
		!strings.Contains(r.stdout, "$NATS_TLS_CA") {
		t.Errorf("publish help lacks the credentials:\n%s", r.stdout)
	}
	if r := run(t, nil, "--version"); r.code != ExitOK || !strings.HasPrefix(r.stdout, "kpictl version ") {
		t.Errorf("version: %+v", r)
	}
	version = "v9.8.7"
	defer func() { version = "" }()
	if r := run(t, nil, "--version"); r.stdout != "kpictl version v9.8.7\n" {
		t.Errorf("version set at build time: %+v", r)
	}
	for shell, want := range map[string]string{"bash": "complete", "zsh": "compdef", "fish": "complete -c kpictl"} {
		if r := run(t, nil, "completion", shell); r.code != ExitOK || !strings.Contains(r.stdout, want) {
			t.Errorf("completion %s: %+v", shell, r)
		}
	}
	if r := run(t, nil, "dlq", "--generate-shell-completion"); !strings.Contains(r.stdout, "list") || !strings.Contains(r.stdout, "replay") {
		t.Errorf("dynamic completion: %+v", r)
	}
}
