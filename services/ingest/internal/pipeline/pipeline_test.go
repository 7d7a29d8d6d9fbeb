package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/internal/metrics"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
)

// fakeMsg is a delivered message that records what the loop did with it.
type fakeMsg struct {
	subject string
	data    []byte
	header  nats.Header
	seq     uint64
	at      time.Time
	pin     string
	// delivered is how many times the server delivered it (1 when 0).
	delivered uint64

	acks, naks, terms, progress atomic.Int32
}

func (m *fakeMsg) Subject() string      { return m.subject }
func (m *fakeMsg) Data() []byte         { return m.data }
func (m *fakeMsg) Headers() nats.Header { return m.header }
func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{Sequence: jetstream.SequencePair{Stream: m.seq}, Timestamp: m.at, NumDelivered: max(m.delivered, 1)}, nil
}
func (m *fakeMsg) Pin() string                   { return m.pin }
func (m *fakeMsg) Ack() error                    { m.acks.Add(1); return nil }
func (m *fakeMsg) Nak() error                    { m.naks.Add(1); return nil }
func (m *fakeMsg) InProgress() error             { m.progress.Add(1); return nil }
func (m *fakeMsg) TermWithReason(_ string) error { m.terms.Add(1); return nil }

// fakeSource delivers msgs through one iterator, then, unless endless,
// waits for more until drained; with endless it makes up valid messages
// for ever.
type fakeSource struct {
	mu      sync.Mutex
	msgs    []*fakeMsg
	endless bool
	next    uint64
	made    []*fakeMsg
}

func (s *fakeSource) Messages() (Iterator, error) {
	return &fakeIter{src: s, drained: make(chan struct{})}, nil
}

type fakeIter struct {
	src     *fakeSource
	once    sync.Once
	drained chan struct{}
}

func (i *fakeIter) Drain() { i.once.Do(func() { close(i.drained) }) }

func (i *fakeIter) Next() (Msg, error) {
	s := i.src
	for {
		select {
		case <-i.drained:
			return nil, jetstream.ErrMsgIteratorClosed
		default:
		}
		s.mu.Lock()
		if len(s.msgs) > 0 {
			m := s.msgs[0]
			s.msgs = s.msgs[1:]
			s.mu.Unlock()
			return m, nil
		}
		if s.endless {
			s.next++
			m := validMsg(fmt.Sprintf("e-%d", s.next), s.next)
			s.made = append(s.made, m)
			s.mu.Unlock()
			return m, nil
		}
		s.mu.Unlock()
		select { // messages may be added later
		case <-i.drained:
			return nil, jetstream.ErrMsgIteratorClosed
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// fakeSink stores rows in memory, optionally slowly or failing.
type fakeSink struct {
	mu      sync.Mutex
	rows    map[store.Identity]store.Row
	delay   time.Duration
	fail    int // the next fail calls of Insert fail
	inserts int
	largest int // most rows in one insert
}

func newSink() *fakeSink { return &fakeSink{rows: map[store.Identity]store.Row{}} }

func (s *fakeSink) Remember(context.Context, []store.Row) error { return nil }

func (s *fakeSink) Stored(_ context.Context, ids []store.Identity) (map[store.Identity]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[store.Identity]bool{}
	for _, id := range ids {
		if _, ok := s.rows[id]; ok {
			out[id] = true
		}
	}
	return out, nil
}

func (s *fakeSink) Insert(ctx context.Context, rows []store.Row) error {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inserts++
	s.largest = max(s.largest, len(rows))
	if s.fail > 0 {
		s.fail--
		return errors.New("clickhouse unavailable")
	}
	for _, r := range rows {
		s.rows[r.Identity()] = r
	}
	return nil
}

func (s *fakeSink) Converge(context.Context, []store.Identity) (int, error) { return 0, nil }

func (s *fakeSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

// fakeDLQ stores dead letters in memory; refuse decides, per message, the
// error the stream answers with.
type fakeDLQ struct {
	mu      sync.Mutex
	letters []*nats.Msg
	refuse  func(*nats.Msg) error
}

func (d *fakeDLQ) PublishMsgAsync(m *nats.Msg, _ ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f := &future{msg: m, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.refuse != nil {
		if err := d.refuse(m); err != nil {
			f.err <- err
			return f, nil
		}
	}
	d.letters = append(d.letters, m)
	f.ok <- &jetstream.PubAck{Stream: contract.DeadLetterStream, Sequence: uint64(len(d.letters))}
	return f, nil
}

func (d *fakeDLQ) all() []*nats.Msg {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*nats.Msg(nil), d.letters...)
}

type future struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *future) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *future) Err() <-chan error            { return f.err }
func (f *future) Msg() *nats.Msg               { return f.msg }

var now = time.Now().UTC()

func validMsg(id string, seq uint64) *fakeMsg {
	body := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"urn:test","type":"cat.smartcity.kpi.measured.v1",
		"time":%q,"municipality":"olot","publisher":"fcc","data":{"service":"waste","kpi":"on-time","value":0.5}}`,
		id, now.Add(-time.Hour).Format(time.RFC3339Nano))
	return &fakeMsg{subject: "smartcity.olot.fcc.measurement", data: []byte(body), header: nats.Header{}, seq: seq, at: now, pin: testPin}
}

func poisonMsg(seq uint64, header nats.Header) *fakeMsg {
	return &fakeMsg{subject: "smartcity.olot.evil.measurement", data: []byte("not json"), header: header, seq: seq, at: now, pin: testPin}
}

// testPin is the pin of the test messages, and the consumer's in the
// pipelines of newTest.
const testPin = "pin-1"

// pinned answers consumer information naming pin as the group's pin.
func pinned(pin string) func(context.Context) (*jetstream.ConsumerInfo, error) {
	return func(context.Context) (*jetstream.ConsumerInfo, error) {
		return &jetstream.ConsumerInfo{PriorityGroups: []jetstream.PriorityGroupState{{Group: Group, PinnedClientID: pin}}}, nil
	}
}

func testConfig() Config {
	return Config{Stream: "SMARTCITY", Consumer: "ingest", DeadLetterStream: contract.DeadLetterStream,
		BatchSize: 100, BatchBytes: 1 << 20, FlushInterval: 10 * time.Millisecond, AckWait: 30 * time.Second}
}

// newTest returns a pipeline whose consumer's pin is testPin.
func newTest(src Source, dlq Publisher, sink Sink, cfg Config) *Pipeline {
	p := NewWith(src, dlq, sink, metrics.New(), slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	p.info = pinned(testPin)
	return p
}

// run starts p and returns a stop that cancels it and waits for Run.
func run(t *testing.T, p *Pipeline) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(ShutdownGrace + 5*time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Stopping while messages flow and a flush is under way never panics and
// always returns: before, the loop could take the closed input channel for
// a message and store an empty one.
func TestShutdownMidFlush(t *testing.T) {
	for i := range 50 {
		src := &fakeSource{endless: true}
		sink := newSink()
		sink.delay = time.Duration(i%5) * time.Millisecond
		cfg := testConfig()
		cfg.BatchSize = 7 + i%13
		p := newTest(src, &fakeDLQ{}, sink, cfg)
		stop := run(t, p)
		time.Sleep(time.Duration(i%7) * time.Millisecond)
		stop()
		// Everything stored was acknowledged, and nothing acknowledged
		// is missing from the sink.
		src.mu.Lock()
		for _, m := range src.made {
			if m.acks.Load() > 0 && sink.rows[store.Identity{Municipality: "olot", Publisher: "fcc", ID: idOf(m)}].StreamSeq == 0 {
				t.Fatalf("run %d: message %d acknowledged but not stored", i, m.seq)
			}
		}
		src.mu.Unlock()
	}
}

func idOf(m *fakeMsg) string {
	s := string(m.data)
	s = s[strings.Index(s, `"id":"`)+6:]
	return s[:strings.IndexByte(s, '"')]
}

// The keep-alive stops touching a batch before the batch is cleared (run
// with -race): a flush slower than a third of the ack wait marks the
// batch's messages in progress, and the next batch reuses the memory.
func TestKeepAliveDuringSlowFlush(t *testing.T) {
	src := &fakeSource{endless: true}
	sink := newSink()
	sink.delay = 40 * time.Millisecond
	cfg := testConfig()
	cfg.AckWait = 15 * time.Millisecond
	cfg.BatchSize = 20
	p := newTest(src, &fakeDLQ{}, sink, cfg)
	stop := run(t, p)
	eventually(t, "several slow flushes", func() bool { return sink.count() > 100 })
	stop()
	var touched int
	src.mu.Lock()
	for _, m := range src.made {
		if m.progress.Load() > 0 {
			touched++
		}
	}
	src.mu.Unlock()
	if touched == 0 {
		t.Fatal("no message was marked in progress during flushes slower than a third of the ack wait")
	}
}

// A message whose headers are too large for the dead-letter stream is
// dead-lettered with its headers trimmed, and the valid messages behind it
// are stored in the same flush: nothing waits for it.
func TestPoisonHeadersDoNotStall(t *testing.T) {
	huge := nats.Header{}
	for i := range 5000 {
		huge.Add("Nats-A", "x")
		huge.Add(fmt.Sprintf("H-%d", i), strings.Repeat("y", 10))
	}
	oneBig := nats.Header{"X-Big": {strings.Repeat("z", 65300)}, "X-Small": {"kept"}}
	msgs := []*fakeMsg{poisonMsg(1, huge), poisonMsg(2, oneBig)}
	for i := range 1000 {
		msgs = append(msgs, validMsg(fmt.Sprintf("v-%d", i), uint64(i+3)))
	}
	dlq := &fakeDLQ{refuse: func(m *nats.Msg) error {
		if headerSize(m.Header) > 65535 {
			return &jetstream.APIError{Code: 400, ErrorCode: 10097, Description: "header size exceeds maximum allowed of 64k"}
		}
		return nil
	}}
	sink := newSink()
	cfg := testConfig()
	cfg.BatchSize = 5000
	cfg.FlushInterval = 50 * time.Millisecond
	p := newTest(&fakeSource{msgs: msgs}, dlq, sink, cfg)
	stop := run(t, p)
	defer stop()
	eventually(t, "1,000 valid events stored", func() bool { return sink.count() == 1000 })
	letters := dlq.all()
	if len(letters) != 2 {
		t.Fatalf("%d dead letters, want 2", len(letters))
	}
	for _, l := range letters {
		if headerSize(l.Header) > contract.DeadLetterHeaderBudget {
			t.Errorf("dead letter %s has %d header bytes", l.Header.Get(contract.HeaderStreamSeq), headerSize(l.Header))
		}
		if l.Header.Get(contract.HeaderDropped) == "" || string(l.Data) != "not json" {
			t.Errorf("dead letter %s: dropped %q, body %q", l.Header.Get(contract.HeaderStreamSeq), l.Header.Get(contract.HeaderDropped), l.Data)
		}
		if l.Subject != "deadletter.olot.evil.malformed_json" {
			t.Errorf("dead letter on %s", l.Subject)
		}
	}
	if got := letters[1].Header.Get("X-Small"); got != "kept" {
		t.Errorf("a header that fits was dropped along with the one that does not: X-Small = %q", got)
	}
	kept := 0
	for k, vs := range letters[0].Header {
		if strings.HasPrefix(k, "H-") {
			kept += len(vs)
		}
		if strings.HasPrefix(strings.ToLower(k), "nats-a") {
			t.Errorf("a Nats-* header kept under its own name: %s", k)
		}
	}
	if kept == 0 || kept == 5000 {
		t.Errorf("%d of 5000 original header values kept, want as many as fit", kept)
	}
	for _, m := range msgs {
		eventually(t, "every message acknowledged", func() bool { return m.acks.Load() == 1 })
	}
}

// A dead letter refused for good even without its original headers is not
// retried for ever: the message is terminated and counted, and the others
// are stored.
func TestRefusedDeadLetterTerminated(t *testing.T) {
	refusals := 0
	dlq := &fakeDLQ{refuse: func(m *nats.Msg) error {
		refusals++
		return &jetstream.APIError{Code: 400, ErrorCode: 10054, Description: "message size exceeds maximum allowed"}
	}}
	poison := poisonMsg(1, nats.Header{"A": {"b"}})
	msgs := []*fakeMsg{poison}
	for i := range 10 {
		msgs = append(msgs, validMsg(fmt.Sprintf("v-%d", i), uint64(i+2)))
	}
	sink := newSink()
	p := newTest(&fakeSource{msgs: msgs}, dlq, sink, testConfig())
	stop := run(t, p)
	eventually(t, "valid events stored", func() bool { return sink.count() == 10 })
	eventually(t, "poison terminated", func() bool { return poison.terms.Load() == 1 })
	stop()
	if poison.acks.Load() != 0 || refusals != 2 {
		t.Fatalf("poison acked %d times after %d refusals; want terminated after 2 (with and without headers)", poison.acks.Load(), refusals)
	}
	if got := testutil.ToFloat64(p.m.Terminated); got != 1 {
		t.Fatalf("terminated counter %v", got)
	}
}

// A failure a retry may cure (the stream unavailable) is retried until it
// succeeds, and the dead letter is stored once.
func TestDeadLetterRetriedWhenUnavailable(t *testing.T) {
	failures := 3
	dlq := &fakeDLQ{refuse: func(m *nats.Msg) error {
		if failures > 0 {
			failures--
			return &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
		}
		return nil
	}}
	poison := poisonMsg(1, nil)
	p := newTest(&fakeSource{msgs: []*fakeMsg{poison}}, dlq, newSink(), testConfig())
	stop := run(t, p)
	eventually(t, "dead letter acknowledged", func() bool { return poison.acks.Load() == 1 })
	stop()
	if n := len(dlq.all()); n != 1 || failures != 0 {
		t.Fatalf("%d dead letters after %d failures left", n, failures)
	}
}

// Nothing is acknowledged while ClickHouse fails; the batch is stored and
// acknowledged once it comes back.
func TestInsertRetriedBeforeAck(t *testing.T) {
	sink := newSink()
	sink.fail = 3
	msgs := []*fakeMsg{validMsg("a", 1), validMsg("b", 2)}
	p := newTest(&fakeSource{msgs: msgs}, &fakeDLQ{}, sink, testConfig())
	stop := run(t, p)
	defer stop()
	eventually(t, "stored after the failures", func() bool { return sink.count() == 2 })
	for _, m := range msgs {
		eventually(t, "acknowledged", func() bool { return m.acks.Load() == 1 })
	}
	if !p.Healthy() {
		t.Fatal("unhealthy after a successful insert")
	}
}

// Batches are bounded by bytes as well as by count.
func TestBatchBoundedByBytes(t *testing.T) {
	var msgs []*fakeMsg
	for i := range 40 {
		m := validMsg(fmt.Sprintf("b-%d", i), uint64(i+1))
		m.header = nats.Header{"Pad": {strings.Repeat("p", 60<<10)}}
		msgs = append(msgs, m)
	}
	sink := newSink()
	cfg := testConfig()
	cfg.BatchSize = 1000
	cfg.BatchBytes = 256 << 10
	cfg.FlushInterval = time.Hour
	p := newTest(&fakeSource{msgs: msgs}, &fakeDLQ{}, sink, cfg)
	stop := run(t, p)
	eventually(t, "every batch stored", func() bool { return sink.count() == 40 })
	stop()
	// 60 KiB each: a batch reaches 256 KiB with its fifth message.
	if sink.largest > 5 {
		t.Fatalf("a batch of %d messages of 60 KiB with BatchBytes 256 KiB", sink.largest)
	}
}

// Duplicates within a batch and of stored identities are stored once: the
// copy first in the stream stands.
func TestDuplicatesInBatch(t *testing.T) {
	sink := newSink()
	first := validMsg("same", 5)
	second := validMsg("same", 3)
	p := newTest(&fakeSource{msgs: []*fakeMsg{first, second, validMsg("other", 9)}}, &fakeDLQ{}, sink, testConfig())
	stop := run(t, p)
	eventually(t, "stored", func() bool { return sink.count() == 2 })
	stop()
	if got := sink.rows[store.Identity{Municipality: "olot", Publisher: "fcc", ID: "same"}].StreamSeq; got != 3 {
		t.Fatalf("stored copy has sequence %d, want the first in the stream (3)", got)
	}
}

// An iterator that ends on its own is replaced.
func TestIteratorEndingIsReplaced(t *testing.T) {
	sink := newSink()
	ended := &endingSource{}
	renewed := &fakeSource{msgs: []*fakeMsg{validMsg("after", 2)}}
	p := newTest(ended, &fakeDLQ{}, sink, testConfig())
	p.renew = func(context.Context) (Source, error) { return renewed, nil }
	stop := run(t, p)
	defer stop()
	eventually(t, "message of the new source stored", func() bool { return sink.count() == 1 })
}

type endingSource struct{}

func (endingSource) Messages() (Iterator, error) { return endingIter{}, nil }

type endingIter struct{}

func (endingIter) Next() (Msg, error) { return nil, errors.New("consumer deleted") }
func (endingIter) Drain()             {}

func TestPermanent(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&jetstream.APIError{Code: 400, ErrorCode: 10097}, true},
		{fmt.Errorf("wrapped: %w", &jetstream.APIError{Code: 400, ErrorCode: 10054}), true},
		{&jetstream.APIError{Code: 503}, false},
		{&jetstream.APIError{Code: 408}, false},
		{nats.ErrMaxPayload, true},
		{nats.ErrTimeout, false},
		{context.DeadlineExceeded, false},
	} {
		if got := permanent(tc.err); got != tc.want {
			t.Errorf("permanent(%v) = %t", tc.err, got)
		}
	}
}
