package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/assoliment/assoliment/services/ingest/internal/metrics"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
)

// checkingSink is a fake sink that records the race checks it is asked
// for: which identities, and when relative to the insert before.
type checkingSink struct {
	*fakeSink
	mu     sync.Mutex
	checks [][]store.Identity
	stored map[store.Identity]bool // reported stored by the look-up, besides the sink's rows
}

func newCheckingSink() *checkingSink {
	return &checkingSink{fakeSink: newSink(), stored: map[store.Identity]bool{}}
}

func (s *checkingSink) Stored(ctx context.Context, ids []store.Identity) (map[store.Identity]bool, error) {
	out, err := s.fakeSink.Stored(ctx, ids)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.stored[id] {
			out[id] = true
		}
	}
	return out, err
}

func (s *checkingSink) Converge(_ context.Context, ids []store.Identity) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, slices.Clone(ids))
	return 0, nil
}

func (s *checkingSink) checked() [][]store.Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.checks)
}

func olot(id string) store.Identity {
	return store.Identity{Municipality: "olot", Publisher: "fcc", ID: id}
}

// acked waits until every message is acknowledged.
func acked(t *testing.T, msgs ...*fakeMsg) {
	t.Helper()
	for _, m := range msgs {
		eventually(t, "acknowledged", func() bool { return m.acks.Load() == 1 })
	}
}

// While the consumer still names the pin every message came under, no
// batch is checked for copies stored by another writer.
func TestNoRaceCheckWhilePinned(t *testing.T) {
	var msgs []*fakeMsg
	for i := range 500 {
		msgs = append(msgs, validMsg(fmt.Sprintf("p-%d", i), uint64(i+1)))
	}
	sink := newCheckingSink()
	cfg := testConfig()
	cfg.BatchSize = 50
	p := newTest(&fakeSource{msgs: msgs}, &fakeDLQ{}, sink, cfg)
	stop := run(t, p)
	acked(t, msgs...)
	stop()
	if c := sink.checked(); len(c) != 0 {
		t.Fatalf("%d race checks while this process held the pin", len(c))
	}
	if sink.count() != 500 {
		t.Fatalf("%d stored", sink.count())
	}
}

// When the consumer names another pin after a batch's insert (another
// replica took over), the batch's measurements are checked, but only
// RaceGrace after its insert; the messages still held under the lost pin
// are given back unwritten, and those delivered under a new pin are
// written.
func TestRaceCheckAfterTakeover(t *testing.T) {
	first := validMsg("a", 1)
	heldUnderLostPin := validMsg("b", 2)
	later := validMsg("c", 3)
	later.pin = "pin-2"
	src := &fakeSource{msgs: []*fakeMsg{first}}
	sink := newCheckingSink()
	cfg := testConfig()
	cfg.BatchSize = 1
	p := newTest(src, &fakeDLQ{}, sink, cfg)
	var current atomic.Value
	current.Store("pin-2")
	p.info = func(ctx context.Context) (*jetstream.ConsumerInfo, error) {
		return pinned(current.Load().(string))(ctx)
	}
	var slept []time.Duration
	var mu sync.Mutex
	p.sleep = func(_ context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return nil
	}
	stop := run(t, p)
	acked(t, first)
	if c := sink.checked(); len(c) != 1 || !slices.Equal(c[0], []store.Identity{olot("a")}) {
		t.Fatalf("race checks %v, want the batch of a", c)
	}
	mu.Lock()
	if len(slept) != 1 || slept[0] <= 0 || slept[0] > RaceGrace {
		t.Fatalf("waited %v before the check, want up to RaceGrace after the insert", slept)
	}
	mu.Unlock()
	src.mu.Lock()
	src.msgs = append(src.msgs, heldUnderLostPin, later)
	src.mu.Unlock()
	acked(t, later)
	stop()
	if heldUnderLostPin.naks.Load() != 1 || heldUnderLostPin.acks.Load() != 0 || sink.count() != 2 {
		t.Fatalf("message under the lost pin: %d naks, %d acks; %d stored", heldUnderLostPin.naks.Load(), heldUnderLostPin.acks.Load(), sink.count())
	}
	if got := testutil.ToFloat64(p.m.GivenBack); got != 1 {
		t.Fatalf("given back %v", got)
	}
	if got := testutil.ToFloat64(p.m.RaceChecks.WithLabelValues(metrics.RaceWriterChanged)); got != 1 {
		t.Fatalf("race checks for a change of writer: %v", got)
	}
}

// A batch whose pin cannot be confirmed (the consumer's information does
// not come, or its messages came under different pins, or under none) is
// checked.
func TestRaceCheckWhenThePinIsUnknown(t *testing.T) {
	for name, tc := range map[string]struct {
		info func(context.Context) (*jetstream.ConsumerInfo, error)
		pins []string
	}{
		"information fails": {func(context.Context) (*jetstream.ConsumerInfo, error) { return nil, errors.New("timeout") }, []string{testPin}},
		"two pins":          {pinned(testPin), []string{testPin, "pin-0"}},
		"no pin":            {pinned(""), []string{""}},
	} {
		t.Run(name, func(t *testing.T) {
			var msgs []*fakeMsg
			for i, pin := range tc.pins {
				m := validMsg(fmt.Sprintf("u-%d", i), uint64(i+1))
				m.pin = pin
				msgs = append(msgs, m)
			}
			sink := newCheckingSink()
			cfg := testConfig()
			cfg.FlushInterval = 50 * time.Millisecond
			p := newTest(&fakeSource{msgs: msgs}, &fakeDLQ{}, sink, cfg)
			p.info = tc.info
			p.sleep = func(context.Context, time.Duration) error { return nil }
			stop := run(t, p)
			acked(t, msgs...)
			stop()
			if c := sink.checked(); len(c) != 1 || len(c[0]) != len(msgs) {
				t.Fatalf("race checks %v", c)
			}
		})
	}
}

// A batch whose ClickHouse step takes RaceGrace or longer is checked at
// once, whoever holds the pin.
func TestRaceCheckOfASlowBatch(t *testing.T) {
	sink := newCheckingSink()
	sink.delay = RaceGrace
	m := validMsg("slow", 1)
	p := newTest(&fakeSource{msgs: []*fakeMsg{m}}, &fakeDLQ{}, sink, testConfig())
	p.sleep = func(context.Context, time.Duration) error {
		t.Error("a slow batch waited before its check")
		return nil
	}
	stop := run(t, p)
	acked(t, m)
	stop()
	if c := sink.checked(); len(c) != 1 || !slices.Equal(c[0], []store.Identity{olot("slow")}) {
		t.Fatalf("race checks %v", c)
	}
	if got := testutil.ToFloat64(p.m.RaceChecks.WithLabelValues(metrics.RaceSlow)); got != 1 {
		t.Fatalf("slow race checks: %v", got)
	}
}

// A redelivered message whose identity is found stored may have been
// stored by a writer killed before its own check: that identity, and only
// it, is checked. A redelivered message not stored yet, and a first
// delivery of a stored identity, are not.
func TestRaceCheckOfRedeliveredStored(t *testing.T) {
	redeliveredStored, redeliveredNew, copyOfStored := validMsg("rs", 1), validMsg("rn", 2), validMsg("cs", 3)
	redeliveredStored.delivered, redeliveredNew.delivered = 2, 3
	sink := newCheckingSink()
	sink.stored[olot("rs")], sink.stored[olot("cs")] = true, true
	cfg := testConfig()
	cfg.FlushInterval = 50 * time.Millisecond
	p := newTest(&fakeSource{msgs: []*fakeMsg{redeliveredStored, redeliveredNew, copyOfStored}}, &fakeDLQ{}, sink, cfg)
	stop := run(t, p)
	acked(t, redeliveredStored, redeliveredNew, copyOfStored)
	stop()
	if c := sink.checked(); len(c) != 1 || !slices.Equal(c[0], []store.Identity{olot("rs")}) {
		t.Fatalf("race checks %v, want the redelivered stored identity alone", c)
	}
}

// A starting pipeline releases the consumer's pin before pulling, and a
// stopping one releases it again when it still holds it, so that the next
// writer starts at once.
func TestPinReleasedAtStartAndStop(t *testing.T) {
	var unpins atomic.Int32
	m := validMsg("x", 1)
	p := newTest(&fakeSource{msgs: []*fakeMsg{m}}, &fakeDLQ{}, newSink(), testConfig())
	p.unpin = func(context.Context) error { unpins.Add(1); return nil }
	stop := run(t, p)
	acked(t, m)
	if n := unpins.Load(); n != 1 {
		t.Fatalf("%d releases before the first pull", n)
	}
	stop()
	if n := unpins.Load(); n != 2 {
		t.Fatalf("%d releases after the stop, want 2", n)
	}

	// Not when another process holds it by then.
	unpins.Store(0)
	m = validMsg("y", 1)
	p = newTest(&fakeSource{msgs: []*fakeMsg{m}}, &fakeDLQ{}, newSink(), testConfig())
	p.unpin = func(context.Context) error { unpins.Add(1); return nil }
	var current atomic.Value
	current.Store(testPin)
	p.info = func(ctx context.Context) (*jetstream.ConsumerInfo, error) {
		return pinned(current.Load().(string))(ctx)
	}
	stop = run(t, p)
	acked(t, m)
	current.Store("pin-9")
	stop()
	if n := unpins.Load(); n != 1 {
		t.Fatalf("%d releases, want only the one at start", n)
	}
}

// keepingSource is a fake source whose iterator counts KeepPin calls.
type keepingSource struct {
	fakeSource
	keeps atomic.Int32
}

func (s *keepingSource) Messages() (Iterator, error) {
	it, err := s.fakeSource.Messages()
	return keepingIter{it.(*fakeIter), &s.keeps}, err
}

type keepingIter struct {
	*fakeIter
	keeps *atomic.Int32
}

func (i keepingIter) KeepPin() { i.keeps.Add(1) }

// While a batch is being written or settled for longer than a quarter of
// the pin's time-to-live, the pin is kept; while the loop idles, it is
// left to the pulls.
func TestPinKeptDuringSlowWrites(t *testing.T) {
	m := validMsg("slow", 1)
	src := &keepingSource{fakeSource: fakeSource{msgs: []*fakeMsg{m}}}
	sink := newCheckingSink()
	sink.delay = PinnedTTL/4 + PinnedTTL/8
	p := newTest(src, &fakeDLQ{}, sink, testConfig())
	stop := run(t, p)
	defer stop()
	acked(t, m)
	if src.keeps.Load() == 0 {
		t.Fatal("the pin was not kept during a slow write")
	}
	kept := src.keeps.Load()
	time.Sleep(PinnedTTL / 2)
	if n := src.keeps.Load(); n != kept {
		t.Fatalf("the pin was kept %d times more while idle", n-kept)
	}
}

// countingSink counts the rows inserted per identity.
type countingSink struct {
	*fakeSink
	mu       sync.Mutex
	inserted map[store.Identity]int
}

func (s *countingSink) Insert(ctx context.Context, rows []store.Row) error {
	if err := s.fakeSink.Insert(ctx, rows); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		s.inserted[r.Identity()]++
	}
	return nil
}

// A batch is prepared while the one before is being inserted: a copy of an
// identity that batch is inserting is not inserted again, and is counted
// as a duplicate.
func TestCopyOfABatchBeingInserted(t *testing.T) {
	sink := &countingSink{fakeSink: newSink(), inserted: map[store.Identity]int{}}
	sink.delay = 300 * time.Millisecond
	first, copyOf, other := validMsg("a", 1), validMsg("a", 2), validMsg("b", 3)
	cfg := testConfig()
	cfg.BatchSize = 1
	p := newTest(&fakeSource{msgs: []*fakeMsg{first, copyOf, other}}, &fakeDLQ{}, sink, cfg)
	stop := run(t, p)
	acked(t, first, copyOf, other)
	stop()
	if n := sink.inserted[olot("a")]; n != 1 {
		t.Fatalf("identity a inserted %d times", n)
	}
	if got := testutil.ToFloat64(p.m.Events.WithLabelValues("cat.smartcity.kpi.measured.v1", metrics.Duplicate)); got != 1 {
		t.Fatalf("%v duplicates counted, want 1", got)
	}
}
