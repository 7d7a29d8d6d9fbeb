package pull_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/ingest/internal/pull"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

const group = "g"

func setup(t *testing.T, ns *server.Server, ttl time.Duration) jetstream.JetStream {
	t.Helper()
	js := testenv.JetStream(t, ns)
	ctx := context.Background()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, "S", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Minute, MaxAckPending: 100000, PriorityPolicy: jetstream.PriorityPolicyPinned, PinnedTTL: ttl,
		PriorityGroups: []string{group}}); err != nil {
		t.Fatal(err)
	}
	return js
}

func config() pull.Config {
	return pull.Config{Stream: "S", Consumer: "c", Group: group, MaxMessages: 100, MaxBytes: 64 << 10,
		Expires: time.Second, Heartbeat: 300 * time.Millisecond}
}

func start(t *testing.T, ns *server.Server, cfg pull.Config) *pull.Iter {
	t.Helper()
	it, err := pull.New(testenv.Connect(t, ns), cfg).Messages()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		it.Drain()
		for {
			if _, err := it.Next(); err != nil {
				return
			}
		}
	})
	return it
}

func publish(t *testing.T, js jetstream.JetStream, n int, header func(i int) nats.Header, body func(i int) []byte) {
	t.Helper()
	for i := range n {
		m := nats.NewMsg(fmt.Sprintf("s.%d", i))
		if header != nil {
			m.Header = header(i)
		}
		m.Data = []byte(fmt.Sprintf("m-%d", i))
		if body != nil {
			m.Data = body(i)
		}
		if _, err := js.PublishMsg(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

// next takes a message within d, failing the test otherwise.
func next(t *testing.T, it *pull.Iter, d time.Duration) *pull.Msg {
	t.Helper()
	type result struct {
		m   *pull.Msg
		err error
	}
	c := make(chan result, 1)
	go func() { m, err := it.Next(); c <- result{m, err} }()
	select {
	case r := <-c:
		if r.err != nil {
			t.Fatalf("next: %v", r.err)
		}
		return r.m
	case <-time.After(d):
		t.Fatalf("no message within %s", d)
		return nil
	}
}

// Every message is handed over once, in order, with its stream metadata
// and the pin it was delivered under; the server's pin header is not among
// the headers handed over.
func TestDeliversEveryMessage(t *testing.T) {
	ns := testenv.NATS(t)
	js := setup(t, ns, 10*time.Second)
	publish(t, js, 1000, func(i int) nats.Header { return nats.Header{"X-N": {fmt.Sprint(i)}} }, nil)
	it := start(t, ns, config())
	for i := range 1000 {
		m := next(t, it, 5*time.Second)
		md, err := m.Metadata()
		if err != nil || md.Sequence.Stream != uint64(i+1) || string(m.Data()) != fmt.Sprintf("m-%d", i) {
			t.Fatalf("message %d: %+v %v %q", i, md, err, m.Data())
		}
		if m.Pin() == "" || len(m.Headers().Values(pull.PinHeader)) != 0 || m.Headers().Get("X-N") != fmt.Sprint(i) {
			t.Fatalf("message %d: pin %q, headers %v", i, m.Pin(), m.Headers())
		}
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if it.Pin() == "" {
		t.Fatal("no pin")
	}
}

// A publisher's Nats-Pin-Id header neither delays the pinned client nor
// takes the pin from it: with one in every three messages, the client
// keeps its pin and takes 3,000 messages with pulls of 100, far quicker
// than one pin time-to-live (which each such message cost with the client
// library's iterator). The publisher's header reaches the handler.
func TestPublisherPinHeaderIsHarmless(t *testing.T) {
	ns := testenv.NATS(t)
	ttl := 20 * time.Second
	js := setup(t, ns, ttl)
	publish(t, js, 3000, func(i int) nats.Header {
		if i%3 == 2 {
			return nats.Header{pull.PinHeader: {"FAKE"}}
		}
		return nil
	}, nil)
	it := start(t, ns, config())
	began := time.Now()
	pin := ""
	for i := range 3000 {
		m := next(t, it, ttl/2)
		if pin == "" {
			pin = m.Pin()
		}
		if m.Pin() != pin {
			t.Fatalf("message %d under pin %q, the client's is %q", i, m.Pin(), pin)
		}
		if want := i%3 == 2; want != (m.Headers().Get(pull.PinHeader) == "FAKE") {
			t.Fatalf("message %d: headers %v", i, m.Headers())
		}
		_ = m.Ack()
	}
	if took := time.Since(began); took > ttl/2 {
		t.Fatalf("3,000 messages took %s", took)
	}
}

// Empty messages with the Status headers of the server's own statuses
// (bad request, heartbeat, consumer deleted) are handed over like any
// other, and the messages behind them follow.
func TestPublisherStatusHeaderIsHarmless(t *testing.T) {
	ns := testenv.NATS(t)
	js := setup(t, ns, 10*time.Second)
	statuses := []nats.Header{{"Status": {"400"}, "Description": {"Bad Request"}}, {"Status": {"100"}, "Description": {"Idle Heartbeat"}},
		{"Status": {"409"}, "Description": {"Consumer Deleted"}}, {"Status": {"423"}, "Description": {"Nats-Pin-Id mismatch"}}}
	publish(t, js, 8, func(i int) nats.Header {
		if i%2 == 0 {
			return statuses[i/2]
		}
		return nil
	}, func(i int) []byte {
		if i%2 == 0 {
			return nil
		}
		return []byte("ok")
	})
	it := start(t, ns, config())
	for i := range 8 {
		m := next(t, it, 5*time.Second)
		if md, _ := m.Metadata(); md.Sequence.Stream != uint64(i+1) {
			t.Fatalf("message %d has sequence %d", i, md.Sequence.Stream)
		}
		_ = m.Ack()
	}
}

// feed hands an iterator's messages over on a channel until it ends.
func feed(it *pull.Iter) <-chan *pull.Msg {
	c := make(chan *pull.Msg, 1000)
	go func() {
		defer close(c)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			c <- m
		}
	}()
	return c
}

// One client at a time gets messages. A client that drains gives back
// what arrives after; once the pin is released, the other client takes
// over at once.
func TestOneClientAtATime(t *testing.T) {
	ns := testenv.NATS(t)
	js := setup(t, ns, time.Minute)
	first, second := start(t, ns, config()), start(t, ns, config())
	firstc, secondc := feed(first), feed(second)
	publish(t, js, 300, nil, nil)
	got := map[*pull.Iter]int{}
	for range 300 {
		select {
		case m := <-firstc:
			got[first]++
			_ = m.Ack()
		case m := <-secondc:
			got[second]++
			_ = m.Ack()
		case <-time.After(5 * time.Second):
			t.Fatalf("messages taken: %v", got)
		}
	}
	if len(got) != 1 {
		t.Fatalf("both clients got messages: %d and %d", got[first], got[second])
	}
	winner, standbyc := first, secondc
	if got[second] > 0 {
		winner, standbyc = second, firstc
	}
	pin := winner.Pin()
	winner.Drain()
	stream, err := js.Stream(context.Background(), "S")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.UnpinConsumer(context.Background(), "c", group); err != nil {
		t.Fatal(err)
	}
	publish(t, js, 10, nil, nil)
	for range 10 {
		select {
		case m := <-standbyc:
			if m.Pin() == "" || m.Pin() == pin {
				t.Fatalf("the standby got a message under pin %q (the first client's was %q)", m.Pin(), pin)
			}
			_ = m.Ack()
		case <-time.After(5 * time.Second):
			t.Fatal("the standby did not take over")
		}
	}
}

// A deleted consumer ends the iteration.
func TestConsumerDeletedEnds(t *testing.T) {
	ns := testenv.NATS(t)
	js := setup(t, ns, 10*time.Second)
	it := start(t, ns, config())
	time.Sleep(200 * time.Millisecond) // a request waiting
	if err := js.DeleteConsumer(context.Background(), "S", "c"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := it.Next()
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, pull.ErrConsumerDeleted) {
			t.Fatalf("next after deletion: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the iteration did not end after the consumer was deleted")
	}
}

// After the server restarts, pulling resumes on its own.
func TestResumesAfterServerRestart(t *testing.T) {
	dir, port := t.TempDir(), testenv.FreePort(t)
	ns := testenv.NATSOn(t, dir, port)
	js := setup(t, ns, 10*time.Second)
	publish(t, js, 5, nil, nil)
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	it, err := pull.New(nc, config()).Messages()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_ = next(t, it, 5*time.Second).Ack()
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	ns = testenv.NATSOn(t, dir, port)
	js2 := testenv.JetStream(t, ns)
	publish(t, js2, 5, nil, nil)
	for range 5 {
		_ = next(t, it, 10*time.Second).Ack()
	}
	it.Drain()
	for {
		if _, err := it.Next(); err != nil {
			break
		}
	}
}

// A client that takes nothing for a while (its writes are slow, its
// allowance full) keeps its pin with KeepPin, and the standby gets
// nothing; once it stops, the pin moves to the standby after the pin's
// time-to-live.
func TestKeepPin(t *testing.T) {
	ns := testenv.NATS(t)
	ttl := 2 * time.Second
	js := setup(t, ns, ttl)
	cfg := config()
	cfg.MaxMessages = 10
	slow := start(t, ns, cfg)
	publish(t, js, 1, nil, nil)
	_ = next(t, slow, 5*time.Second).Ack() // slow is pinned
	pin := slow.Pin()
	standby := feed(start(t, ns, config()))
	publish(t, js, 100, nil, nil) // slow fetches its ten and takes none
	until := time.Now().Add(3 * ttl)
	for time.Now().Before(until) {
		slow.KeepPin()
		select {
		case m := <-standby:
			t.Fatalf("the standby got a message under pin %q while the pin was kept", m.Pin())
		case <-time.After(ttl / 4):
		}
	}
	if slow.Pin() != pin {
		t.Fatalf("pin changed from %q to %q", pin, slow.Pin())
	}
	select {
	case m := <-standby:
		if m.Pin() == pin {
			t.Fatalf("the standby got a message under the slow client's pin")
		}
	case <-time.After(3 * ttl):
		t.Fatal("the standby did not take over once the pin was no longer kept")
	}
}
