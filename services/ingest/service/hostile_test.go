package service_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/internal/pipeline"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// The hostile corpus: testdata/hostile/cases.jsonl holds one message per
// line: its name, the subject it is sent on, optional NATS headers, its body
// (text with time placeholders, base64, or the name of a generator for
// messages too big to keep in the repository) and what must become of it:
// the rejection reason it is dead-lettered with, "stored" for a message that
// looks hostile but follows the contract, or "refused" for one that NATS
// itself refuses at publish time.
const hostileCorpus = "../testdata/hostile/cases.jsonl"

// Outcomes of a hostile case besides a rejection reason.
const (
	expectStored  = "stored"
	expectRefused = "refused"
)

type hostileCase struct {
	Name       string            `json:"name"`
	Subject    string            `json:"subject"`
	Headers    map[string]string `json:"headers"`
	Body       *string           `json:"body"`
	BodyBase64 string            `json:"body_base64"`
	Generate   string            `json:"generate"`
	// GenerateHeaders names headers too many or too large to keep in the
	// corpus: "nats-a-5000" (5,000 values of Nats-A) or "one-65300" (one
	// header of 65,300 bytes).
	GenerateHeaders string `json:"generate_headers"`
	Expect          string `json:"expect"`

	body   []byte
	header nats.Header
}

// loadHostile reads the corpus, with the time placeholders of its bodies
// resolved relative to now.
func loadHostile(t *testing.T, now time.Time) []hostileCase {
	t.Helper()
	f, err := os.Open(hostileCorpus)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	times := strings.NewReplacer(
		"{{time}}", now.Add(-time.Hour).UTC().Format(time.RFC3339),
		"{{future}}", now.Add(time.Hour).UTC().Format(time.RFC3339),
		"{{old}}", now.Add(-401*24*time.Hour).UTC().Format(time.RFC3339),
		"{{time_offset}}", now.Add(-2*time.Hour).In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.000000000-07:00"),
		"{{time_lower}}", strings.ToLower(now.Add(-time.Hour).UTC().Format(time.RFC3339)),
	)
	var cases []hostileCase
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var c hostileCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s:%d: %v", hostileCorpus, line, err)
		}
		switch {
		case c.Body != nil:
			c.body = []byte(times.Replace(*c.Body))
		case c.BodyBase64 != "":
			if c.body, err = base64.StdEncoding.DecodeString(c.BodyBase64); err != nil {
				t.Fatalf("%s:%d: %v", hostileCorpus, line, err)
			}
		case c.Generate != "":
			c.body = generate(t, c.Generate, times)
		default:
			t.Fatalf("%s:%d: no body", hostileCorpus, line)
		}
		c.header = nats.Header{}
		for k, v := range c.Headers {
			c.header[k] = []string{times.Replace(v)} // as given, without canonicalising the name
		}
		switch c.GenerateHeaders {
		case "":
		case "nats-a-5000":
			c.header["Nats-A"] = slices.Repeat([]string{"x"}, 5000)
		case "one-65300":
			c.header["X-Big"] = []string{strings.Repeat("y", 65300)}
		default:
			t.Fatalf("%s:%d: unknown header generator %q", hostileCorpus, line, c.GenerateHeaders)
		}
		if c.Name == "" || names[c.Name] || c.Subject == "" || c.Expect == "" {
			t.Fatalf("%s:%d: name missing or repeated, or no subject or expectation", hostileCorpus, line)
		}
		names[c.Name] = true
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// measurementWith is a valid measurement with id and extra envelope text
// inserted before its closing brace.
func measurementWith(times *strings.Replacer, id, extra string) string {
	return times.Replace(`{"specversion":"1.0","id":"` + id + `","source":"urn:provider:fcc","type":"cat.smartcity.kpi.measured.v1",` +
		`"time":"{{time}}","municipality":"olot","publisher":"fcc","data":{"service":"waste","kpi":"on-time","value":0.5}` + extra + `}`)
}

// generate builds the bodies named in the corpus.
func generate(t *testing.T, name string, times *strings.Replacer) []byte {
	t.Helper()
	kind, arg, _ := strings.Cut(name, "-")
	if kind == "nest" {
		what, depth, _ := strings.Cut(arg, "-")
		n, err := strconv.Atoi(depth)
		if err != nil {
			t.Fatalf("generator %s: %v", name, err)
		}
		arrays := strings.Repeat("[", n) + strings.Repeat("]", n)
		switch what {
		case "array":
			return []byte(arrays)
		case "object":
			return []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n))
		case "data":
			return []byte(strings.Replace(measurementWith(times, "h-nest", ""), `"value":0.5`, `"value":`+arrays, 1))
		case "extension":
			// An unknown attribute is ignored, however deep, within the
			// parser's depth limit.
			return []byte(measurementWith(times, "s-5", `,"x":`+arrays))
		}
	}
	if kind == "size" {
		// A valid measurement padded to exactly n bytes: a number, or just
		// under or over the largest message the main stream stores.
		n, err := strconv.Atoi(arg)
		switch arg {
		case "under-stream-limit":
			n, err = contract.MaxStoredMessage-256, nil
		case "over-stream-limit":
			n, err = contract.MaxStoredMessage+1, nil
		}
		if err != nil {
			t.Fatalf("generator %s: %v", name, err)
		}
		base := measurementWith(times, "h-size", `,"pad":""`)
		return []byte(measurementWith(times, "h-size", `,"pad":"`+strings.Repeat("x", n-len(base))+`"`))
	}
	if name == "string-10MB" {
		return []byte(measurementWith(times, "h-10mb", `,"pad":"`+strings.Repeat("x", 10<<20)+`"`))
	}
	t.Fatalf("unknown generator %q", name)
	return nil
}

// TestHostileCorpusDecode checks every case of the corpus against the
// contract alone.
func TestHostileCorpusDecode(t *testing.T) {
	now := time.Now()
	cases := loadHostile(t, now)
	rejected := 0
	for _, c := range cases {
		ev, rej := contract.DecodeMessage(c.Subject, c.header, c.body, contract.Rules{Now: now})
		switch c.Expect {
		case expectStored:
			if rej != nil {
				t.Errorf("%s: rejected (%v), want stored", c.Name, rej)
			}
		case expectRefused:
			// NATS refuses it first; the contract would too, unless only
			// its headers are at fault.
			if rej == nil && len(c.Headers) == 0 {
				t.Errorf("%s: accepted %+v", c.Name, ev)
			}
		default:
			rejected++
			if rej == nil {
				t.Errorf("%s: accepted %+v, want %s", c.Name, ev, c.Expect)
			} else if string(rej.Reason) != c.Expect {
				t.Errorf("%s: %s (%s), want %s", c.Name, rej.Reason, rej.Message, c.Expect)
			}
		}
	}
	if rejected < 60 {
		t.Fatalf("the corpus has %d rejected cases; at least 60 are wanted", rejected)
	}
}

// TestHostileThroughNATS sends the corpus through NATS to a running ingest
// service, each case followed by a valid event: every rejected message lands
// in the dead-letter stream whole, with its subject and expected reason;
// messages NATS refuses leave the service unharmed; every valid event is
// stored.
func TestHostileThroughNATS(t *testing.T) {
	e := start(t)
	now := time.Now()
	cases := loadHostile(t, now)
	ctx := context.Background()

	valid := func(i int) *contract.Event {
		return event(contract.TypeKPIMeasured, "olot", "fcc", fmt.Sprintf("ok-%d", i), now.Add(-time.Minute),
			&contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: float64(i)})
	}
	publishEvent(t, e.js, valid(0)) // waits for the service to create the stream
	bySeq := map[uint64]hostileCase{}
	stored, perReason := 0, map[string]int{}
	for i, c := range cases {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg := nats.NewMsg(c.Subject)
		msg.Data = c.body
		msg.Header = c.header
		ack, err := e.js.PublishMsg(pctx, msg)
		cancel()
		switch {
		case c.Expect == expectRefused:
			if err == nil {
				t.Errorf("%s: accepted by NATS as %s/%d, want refused", c.Name, ack.Stream, ack.Sequence)
			}
		case err != nil:
			t.Fatalf("%s: publish: %v", c.Name, err)
		case c.Expect == expectStored:
			stored++
		default:
			bySeq[ack.Sequence] = c
			perReason[c.Expect]++
		}
		publishEvent(t, e.js, valid(i+1))
	}
	stored += len(cases) + 1

	rows := func() uint64 {
		return count(t, e.ch, "SELECT count() FROM {db}.measurements") + count(t, e.ch, "SELECT count() FROM {db}.catalog") +
			count(t, e.ch, "SELECT count() FROM {db}.incidents")
	}
	testenv.Eventually(t, "valid and hostile-but-valid events stored", 30*time.Second, func() bool { return rows() == uint64(stored) })
	dlq, err := e.js.Stream(ctx, contract.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "dead letters", 30*time.Second, func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == uint64(len(bySeq))
	})
	seen := map[string]bool{}
	for seq := uint64(1); seq <= uint64(len(bySeq)); seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		orig, err := strconv.ParseUint(m.Header.Get(contract.HeaderStreamSeq), 10, 64)
		c, ok := bySeq[orig]
		if err != nil || !ok {
			t.Fatalf("dead letter %d names stream sequence %q, which is no hostile case", seq, m.Header.Get(contract.HeaderStreamSeq))
		}
		seen[c.Name] = true
		checkDeadLetter(t, c, m)
	}
	if len(seen) != len(bySeq) {
		t.Fatalf("%d distinct cases dead-lettered, want %d", len(seen), len(bySeq))
	}
	time.Sleep(200 * time.Millisecond) // nothing more arrives
	if n := rows(); n != uint64(stored) {
		t.Fatalf("%d rows, want %d", n, stored)
	}
	for reason, n := range perReason {
		assertMetric(t, e, fmt.Sprintf(`smartcity_ingest_rejections_total{publisher="unknown",reason=%q} %d`, reason, n))
	}
	if code, body := get(t, "http://"+e.cfg.HTTPAddr+"/readyz"); code != 200 {
		t.Fatalf("readyz after the corpus: %d %s", code, body)
	}
}

func checkDeadLetter(t *testing.T, c hostileCase, m *jetstream.RawStreamMsg) {
	t.Helper()
	if got := m.Header.Get(contract.HeaderReason); got != c.Expect {
		t.Errorf("%s: reason %s (%s), want %s", c.Name, got, m.Header.Get(contract.HeaderDetail), c.Expect)
	}
	if m.Subject != contract.DeadLetterSubject(c.Subject, contract.Reason(c.Expect)) || m.Header.Get(contract.HeaderSubject) != c.Subject {
		t.Errorf("%s: kept on %s with original subject %q, want %q", c.Name, m.Subject, m.Header.Get(contract.HeaderSubject), c.Subject)
	}
	if string(m.Data) != string(c.body) {
		t.Errorf("%s: dead letter body differs from the original (%d bytes, want %d)", c.Name, len(m.Data), len(c.body))
	}
	if m.Header.Get(contract.HeaderDetail) == "" || m.Header.Get(contract.HeaderReceivedAt) == "" {
		t.Errorf("%s: headers %v", c.Name, m.Header)
	}
	// The publisher's headers are kept; those JetStream would obey are
	// renamed, and the platform's own are not the publisher's.
	for k, vs := range c.header {
		if c.GenerateHeaders != "" {
			break // too many to keep; checked below
		}
		v := vs[0]
		switch {
		case strings.HasPrefix(strings.ToLower(k), "nats-"):
			if m.Header.Get(pipeline.OriginalHeaderPrefix+k) != v || len(m.Header.Values(k)) != 0 {
				t.Errorf("%s: header %s not renamed in the dead letter: %v", c.Name, k, m.Header)
			}
		case strings.HasPrefix(k, "Smartcity-"):
			if m.Header.Get(k) == v {
				t.Errorf("%s: the publisher set the platform's header %s", c.Name, k)
			}
		case m.Header.Get(k) != v:
			t.Errorf("%s: header %s not kept", c.Name, k)
		}
	}
	// Headers beyond what JetStream allows are left out, and said so.
	if trimmed := c.GenerateHeaders != ""; trimmed != (m.Header.Get(contract.HeaderDropped) != "") {
		t.Errorf("%s: %s header %q", c.Name, contract.HeaderDropped, m.Header.Get(contract.HeaderDropped))
	}
}
