// Package publish sends the gateway's accepted events to JetStream and waits
// for their acknowledgements, with one bound on the events awaiting an
// acknowledgement across all requests, so a flood of requests cannot make
// the gateway buffer without limit.
package publish

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher publishes messages asynchronously. Safe for concurrent use.
type Publisher struct {
	js     jetstream.JetStream
	stream string
	slots  chan struct{}
}

// New returns a publisher on nc that counts a message as stored only when
// stream acknowledges it, fails a message not acknowledged within ackTimeout, and keeps at
// most maxInFlight messages awaiting acknowledgement.
func New(nc *nats.Conn, stream string, ackTimeout time.Duration, maxInFlight int) (*Publisher, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(ackTimeout),
		// Above our own bound, so the client library never stalls us.
		jetstream.WithPublishAsyncMaxPending(maxInFlight+1024))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Publisher{js: js, stream: stream, slots: make(chan struct{}, maxInFlight)}, nil
}

// Publish sends msgs in order and waits until every one is acknowledged or
// has failed. It returns the number that failed and the first failure; the
// others are stored durably. When ctx ends (the client went away) it stops
// sending and returns; messages already sent are still awaited in the
// background, so their slots are given back.
func (p *Publisher) Publish(ctx context.Context, msgs []*nats.Msg) (failed int, err error) {
	pending := make([]jetstream.PubAckFuture, 0, len(msgs))
	settle := func(e error) {
		<-p.slots
		if e != nil {
			failed++
			if err == nil {
				err = e
			}
		}
	}
	defer func() {
		if len(pending) > 0 { // ctx ended: settle the rest without us
			go func(rest []jetstream.PubAckFuture) {
				for _, f := range rest {
					_ = p.wait(context.Background(), f)
					<-p.slots
				}
			}(pending)
		}
	}()
	for i, m := range msgs {
		// A free slot, or our own oldest message settling, whichever first.
		for acquired := false; !acquired; {
			var ok <-chan *jetstream.PubAck
			var fail <-chan error
			if len(pending) > 0 {
				ok, fail = pending[0].Ok(), pending[0].Err()
			}
			select {
			case p.slots <- struct{}{}:
				acquired = true
			case ack := <-ok:
				settle(p.check(pending[0], ack))
				pending = pending[1:]
			case e := <-fail:
				settle(fmt.Errorf("publish %s: %w", pending[0].Msg().Subject, e))
				pending = pending[1:]
			case <-ctx.Done():
				return failed + len(msgs) - i, ctx.Err()
			}
		}
		f, perr := p.js.PublishMsgAsync(m)
		if perr != nil {
			<-p.slots
			failed++
			if err == nil {
				err = fmt.Errorf("publish %s: %w", m.Subject, perr)
			}
			continue
		}
		pending = append(pending, f)
	}
	for len(pending) > 0 {
		e := p.wait(ctx, pending[0])
		if errors.Is(e, context.Canceled) || errors.Is(e, context.DeadlineExceeded) {
			return failed + len(pending), e
		}
		settle(e)
		pending = pending[1:]
	}
	return failed, err
}

// wait returns nil once f is acknowledged by the expected stream, or why
// it failed.
func (p *Publisher) wait(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case ack := <-f.Ok():
		return p.check(f, ack)
	case err := <-f.Err():
		return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// check verifies that the acknowledgement comes from the configured
// stream. The message is not sent with Nats-Expected-Stream, which would be
// stored with it and make its dead letter, published to another stream,
// fail the same check.
func (p *Publisher) check(f jetstream.PubAckFuture, ack *jetstream.PubAck) error {
	if ack.Stream != p.stream {
		return fmt.Errorf("publish %s: stored by stream %s, not %s: the configured stream does not capture this subject", f.Msg().Subject, ack.Stream, p.stream)
	}
	return nil
}
