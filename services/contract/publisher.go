package contract

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Result is the outcome of one published message: the broker's ack, or why
// it failed.
type Result struct {
	Subject string
	ID      string
	Ack     *jetstream.PubAck
	Err     error
}

// Publisher publishes events to JetStream asynchronously with a bounded
// number of messages in flight. Each message carries Nats-Msg-Id set to the
// event id, so the broker drops a copy re-sent inside its duplicate window.
// Every ack or failure is reported to OnResult. Safe for one goroutine.
type Publisher struct {
	js         jetstream.JetStream
	max        int
	ackTimeout time.Duration
	onResult   func(Result)

	mu      sync.Mutex
	pending []inflight
}

type inflight struct {
	subject, id string
	f           jetstream.PubAckFuture
	sent        time.Time
}

// PublisherOption configures a Publisher.
type PublisherOption func(*Publisher)

// WithMaxInFlight bounds the messages awaiting a broker ack (default 1024).
func WithMaxInFlight(n int) PublisherOption {
	return func(p *Publisher) {
		if n > 0 {
			p.max = n
		}
	}
}

// DefaultAckTimeout is how long a message waits for the broker's ack
// before it counts as failed.
const DefaultAckTimeout = 10 * time.Second

// WithAckTimeout sets how long a message waits for the broker's ack before
// it is reported as failed (default DefaultAckTimeout). An ack can be lost
// with the connection (a server stopped, a cluster electing a leader): a
// failed message may have been stored, and sending it again with the same
// id is harmless.
func WithAckTimeout(d time.Duration) PublisherOption {
	return func(p *Publisher) {
		if d > 0 {
			p.ackTimeout = d
		}
	}
}

// WithResults sets the function called with every ack or failure, in
// publishing order.
func WithResults(fn func(Result)) PublisherOption {
	return func(p *Publisher) { p.onResult = fn }
}

// NewPublisher returns a publisher on js.
func NewPublisher(js jetstream.JetStream, opts ...PublisherOption) *Publisher {
	p := &Publisher{js: js, max: 1024, ackTimeout: DefaultAckTimeout, onResult: func(Result) {}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Publish marshals ev and sends it on its subject.
func (p *Publisher) Publish(ctx context.Context, ev *Event) error {
	b, err := Marshal(ev)
	if err != nil {
		return err
	}
	return p.PublishRaw(ctx, ev.Subject(), ev.ID, b)
}

// PublishRaw sends an already encoded message with Nats-Msg-Id set to id
// (no header when id is empty). It blocks while the in-flight bound is
// reached, until an ack arrives or ctx ends.
func (p *Publisher) PublishRaw(ctx context.Context, subject, id string, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.pending) >= p.max {
		if _, err := p.awaitOldest(ctx); err != nil {
			return err
		}
	}
	msg := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{}}
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	if id != "" {
		msg.Header.Set(nats.MsgIdHdr, id)
	}
	f, err := p.js.PublishMsgAsync(msg)
	for errors.Is(err, jetstream.ErrTooManyStalledMsgs) && len(p.pending) > 0 {
		// The client's own bound is lower than ours: wait for an ack.
		if _, werr := p.awaitOldest(ctx); werr != nil {
			return werr
		}
		f, err = p.js.PublishMsgAsync(msg)
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	p.pending = append(p.pending, inflight{subject: subject, id: id, f: f, sent: time.Now()})
	return nil
}

func (p *Publisher) awaitOldest(ctx context.Context) (failed bool, err error) {
	in := p.pending[0]
	r := Result{Subject: in.subject, ID: in.id}
	timeout := time.NewTimer(time.Until(in.sent.Add(p.ackTimeout)))
	defer timeout.Stop()
	select {
	case ack := <-in.f.Ok():
		r.Ack = ack
	case r.Err = <-in.f.Err():
	case <-timeout.C:
		r.Err = fmt.Errorf("no acknowledgement within %s: %w", p.ackTimeout, ErrNotAcked)
	case <-ctx.Done():
		return false, ctx.Err()
	}
	p.pending[0] = inflight{}
	p.pending = p.pending[1:]
	p.onResult(r)
	return r.Err != nil, nil
}

// Wait blocks until every message sent so far is acked or failed. It
// returns an error when any of them failed (each failure was also reported
// to the results function) or when ctx ends first.
func (p *Publisher) Wait(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	failures := 0
	for len(p.pending) > 0 {
		failed, err := p.awaitOldest(ctx)
		if err != nil {
			return err
		}
		if failed {
			failures++
		}
	}
	if failures > 0 {
		return fmt.Errorf("%d messages were %w", failures, ErrNotAcked)
	}
	return nil
}

// ErrNotAcked marks messages the broker did not acknowledge.
var ErrNotAcked = errors.New("not acknowledged by the broker")
