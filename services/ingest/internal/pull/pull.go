// Package pull reads a JetStream pull consumer of the pinned-client
// priority policy with pull requests of its own, keeping at most a given
// number of messages and bytes fetched and not yet taken.
//
// The client library's iterator (nats.go 1.55) reads two things of a
// delivered message from headers that a publisher can set too, and a
// publisher's message arrives with its headers whole: the pin, from the
// first Nats-Pin-Id value (the server appends its own, last), and whether
// the message is a status of the server at all (an empty message with a
// Status header). A message carrying Nats-Pin-Id made the pinned client
// send a wrong pin and wait out the pin's time-to-live; one carrying
// Status: 400 stopped the iterator each time it was delivered, and was
// never handed over. Here a message with a reply subject (its
// acknowledgement subject) is always a delivered message, and only one
// without is a status of the server (the server's never have one); the pin
// is the last Nats-Pin-Id value, which is taken off the headers handed
// over, so that they are the publisher's.
package pull

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// PinHeader is the header in which the server names the pin a message was
// delivered under.
const PinHeader = "Nats-Pin-Id"

// Config says what to pull and how much to hold.
type Config struct {
	Stream, Consumer, Group string
	// MaxMessages and MaxBytes bound what is requested and not yet taken
	// by Next; a new pull request is sent once half of either is free.
	MaxMessages, MaxBytes int
	// Expires is each pull request's life: an idle client asks again this
	// often, which is also what keeps its pin.
	Expires time.Duration
	// Heartbeat is how often the server says a pull request is still
	// waiting; three missed in a row and the requests are taken as lost.
	Heartbeat time.Duration
}

// Errors that end an iteration.
var (
	// ErrDrained ends an iteration after Drain, once every message
	// fetched before it has been taken.
	ErrDrained = errors.New("pull: drained")
	// ErrConsumerDeleted ends an iteration whose consumer was deleted.
	ErrConsumerDeleted = errors.New("pull: consumer deleted")
)

// Consumer pulls from one durable consumer.
type Consumer struct {
	nc  *nats.Conn
	cfg Config
}

// New returns a puller of cfg's consumer on nc.
func New(nc *nats.Conn, cfg Config) *Consumer { return &Consumer{nc: nc, cfg: cfg} }

// Messages starts pulling; Next hands the messages over.
func (c *Consumer) Messages() (*Iter, error) {
	it := &Iter{c: c, wake: make(chan struct{}, 1), kick: make(chan struct{}, 1), done: make(chan struct{})}
	it.inbox = c.nc.NewInbox()
	sub, err := c.nc.Subscribe(it.inbox, it.receive)
	if err != nil {
		return nil, fmt.Errorf("pull: subscribe: %w", err)
	}
	// What arrives is bounded by the requests, not by the subscription.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("pull: %w", err)
	}
	it.sub = sub
	it.status = c.nc.StatusChanged(nats.CONNECTED)
	it.wg.Go(it.pullLoop)
	it.poke()
	return it, nil
}

// Iter is one running pull.
type Iter struct {
	c      *Consumer
	inbox  string
	sub    *nats.Subscription
	status chan nats.Status
	wg     sync.WaitGroup

	mu                   sync.Mutex
	queue                fifo
	heldMsgs, heldBytes  int // received, not yet taken
	askedMsgs, askedByte int // requested, not yet received or given up by the server
	pin                  string
	heard                time.Time // last message or status while requests were out
	err                  error     // ends the iteration once the queue is empty
	draining, closed     bool
	retryAt              time.Time // no request before this (after a refusal)

	wake chan struct{} // something for Next
	kick chan struct{} // the puller should look again
	done chan struct{}
}

// Pin is the pin of the last message received, "" when none or when the
// server refused it since.
func (it *Iter) Pin() string {
	it.mu.Lock()
	defer it.mu.Unlock()
	return it.pin
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (it *Iter) poke() { signal(it.kick) }

// Next returns the next message; after Drain, or once the consumer is
// gone, it returns an error when every message received before has been
// taken.
func (it *Iter) Next() (*Msg, error) {
	for {
		it.mu.Lock()
		if m := it.queue.pop(); m != nil {
			it.heldMsgs--
			it.heldBytes -= m.size
			it.mu.Unlock()
			it.poke()
			return m, nil
		}
		err := it.err
		if err == nil && it.draining {
			err = ErrDrained
		}
		it.mu.Unlock()
		if err != nil {
			it.close()
			return nil, err
		}
		select {
		case <-it.wake:
		case <-it.done:
		}
	}
}

// Drain stops pulling: Next returns what was received, then ErrDrained.
// Messages that arrive after Drain are given back to the server at once
// (negative acknowledgement), so that another client gets them without
// waiting for the acknowledgement deadline.
func (it *Iter) Drain() {
	it.mu.Lock()
	it.draining = true
	it.mu.Unlock()
	signal(it.wake)
}

// close ends the subscription and the puller.
func (it *Iter) close() {
	it.mu.Lock()
	if it.closed {
		it.mu.Unlock()
		return
	}
	it.closed = true
	it.mu.Unlock()
	close(it.done)
	_ = it.sub.Unsubscribe()
	it.c.nc.RemoveStatusListener(it.status)
	it.wg.Wait()
}

// receive handles what arrives on the inbox: messages and the server's
// statuses.
func (it *Iter) receive(m *nats.Msg) {
	if m.Reply != "" {
		it.deliver(m)
		return
	}
	code, desc := m.Header.Get("Status"), strings.ToLower(m.Header.Get("Description"))
	msgs, _ := strconv.Atoi(m.Header.Get("Nats-Pending-Messages"))
	bytes, _ := strconv.Atoi(m.Header.Get("Nats-Pending-Bytes"))
	it.mu.Lock()
	it.heard = time.Now()
	switch {
	case code == "100": // idle heartbeat
	case code == "404" || code == "408" || (code == "409" && (strings.Contains(desc, "exceeds maxbytes") || strings.Contains(desc, "batch completed"))):
		// A request ended with this much of it undelivered.
		it.askedMsgs, it.askedByte = max(it.askedMsgs-msgs, 0), max(it.askedByte-bytes, 0)
	case code == "409" && strings.Contains(desc, "consumer deleted"):
		it.err = ErrConsumerDeleted
	case code == "409" && (strings.Contains(desc, "leadership change") || strings.Contains(desc, "server shutdown")):
		it.askedMsgs, it.askedByte = 0, 0
	case code == "423": // our pin is no longer the consumer's: ask without it
		it.pin = ""
		it.askedMsgs, it.askedByte = 0, 0
	case code == "503": // no responders: the consumer or its leader is not there yet
		it.askedMsgs, it.askedByte = 0, 0
		it.retryAt = time.Now().Add(time.Second)
	default:
		it.err = fmt.Errorf("pull: the server refused a pull request: %s %s", code, m.Header.Get("Description"))
	}
	it.mu.Unlock()
	it.poke()
	signal(it.wake)
}

// deliver queues a delivered message, with the server's pin taken off
// its headers.
func (it *Iter) deliver(m *nats.Msg) {
	msg := &Msg{m: m, size: m.Size()}
	if vs := m.Header.Values(PinHeader); len(vs) > 0 {
		msg.pin = vs[len(vs)-1]
		if len(vs) == 1 {
			delete(m.Header, PinHeader)
		} else {
			m.Header[PinHeader] = vs[:len(vs)-1]
		}
	}
	it.mu.Lock()
	it.heard = time.Now()
	it.askedMsgs, it.askedByte = max(it.askedMsgs-1, 0), max(it.askedByte-msg.size, 0)
	if msg.pin != "" {
		it.pin = msg.pin
	}
	if it.draining || it.closed {
		it.mu.Unlock()
		_ = m.Nak()
		return
	}
	it.queue.push(msg)
	it.heldMsgs++
	it.heldBytes += msg.size
	it.mu.Unlock()
	signal(it.wake)
}

// KeepPin sends a pull request that cannot take any message (it asks for
// one byte) and so only tells the server this client is there: the server
// restarts the pin's timer on every pull request that names the pin. The
// writer uses it while a slow write keeps it from pulling, so that it does
// not lose the pin to a standby that could do no better.
func (it *Iter) KeepPin() {
	it.mu.Lock()
	pin := it.pin
	if pin == "" || it.draining || it.closed {
		it.mu.Unlock()
		return
	}
	if it.askedMsgs == 0 {
		it.heard = time.Now()
	}
	it.askedMsgs++
	it.askedByte++
	it.mu.Unlock()
	cfg := it.c.cfg
	body, _ := json.Marshal(request{Batch: 1, MaxBytes: 1, Expires: cfg.Expires.Nanoseconds(), Heartbeat: cfg.Heartbeat.Nanoseconds(),
		Group: cfg.Group, Pin: pin})
	if err := it.c.nc.PublishRequest(it.subject(), it.inbox, body); err != nil {
		it.mu.Lock()
		it.askedMsgs, it.askedByte = max(it.askedMsgs-1, 0), max(it.askedByte-1, 0)
		it.mu.Unlock()
	}
}

func (it *Iter) subject() string {
	return fmt.Sprintf("$JS.API.CONSUMER.MSG.NEXT.%s.%s", it.c.cfg.Stream, it.c.cfg.Consumer)
}

// request is a pull request as the server reads it.
type request struct {
	Batch     int    `json:"batch"`
	MaxBytes  int    `json:"max_bytes,omitempty"`
	Expires   int64  `json:"expires"`
	Heartbeat int64  `json:"idle_heartbeat,omitempty"`
	Group     string `json:"group,omitempty"`
	Pin       string `json:"id,omitempty"`
}

// pullLoop sends pull requests while there is room, and takes requests
// for lost after a reconnection or when the server has gone quiet.
func (it *Iter) pullLoop() {
	cfg := it.c.cfg
	subject := it.subject()
	tick := time.NewTicker(cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-it.done:
			return
		case <-it.kick:
		case <-tick.C:
		case _, ok := <-it.status: // reconnected: the server forgot our requests
			if ok {
				it.mu.Lock()
				it.askedMsgs, it.askedByte = 0, 0
				it.mu.Unlock()
			}
		}
		it.mu.Lock()
		now := time.Now()
		if it.askedMsgs > 0 && now.Sub(it.heard) > 3*cfg.Heartbeat {
			it.askedMsgs, it.askedByte = 0, 0 // requests lost without a word (a server stopped, say)
		}
		freeMsgs := cfg.MaxMessages - it.heldMsgs - it.askedMsgs
		freeBytes := cfg.MaxBytes - it.heldBytes - it.askedByte
		// No request while disconnected: the client would buffer it and
		// send every one at once on reconnecting, asking for several times
		// what the limits allow.
		if it.draining || it.closed || it.err != nil || now.Before(it.retryAt) || !it.c.nc.IsConnected() ||
			freeMsgs < max(cfg.MaxMessages/2, 1) || freeBytes < max(cfg.MaxBytes/2, 1) {
			it.mu.Unlock()
			continue
		}
		req := request{Batch: freeMsgs, MaxBytes: freeBytes, Expires: cfg.Expires.Nanoseconds(),
			Heartbeat: cfg.Heartbeat.Nanoseconds(), Group: cfg.Group, Pin: it.pin}
		if it.askedMsgs == 0 {
			it.heard = now
		}
		it.askedMsgs += freeMsgs
		it.askedByte += freeBytes
		it.mu.Unlock()
		body, _ := json.Marshal(req)
		if err := it.c.nc.PublishRequest(subject, it.inbox, body); err != nil {
			it.mu.Lock()
			it.askedMsgs, it.askedByte = max(it.askedMsgs-freeMsgs, 0), max(it.askedByte-freeBytes, 0)
			it.retryAt = time.Now().Add(100 * time.Millisecond)
			it.mu.Unlock()
		}
	}
}

// Msg is a delivered message.
type Msg struct {
	m    *nats.Msg
	size int
	pin  string
}

// Subject is the subject the message was published on.
func (m *Msg) Subject() string { return m.m.Subject }

// Data is the message's body.
func (m *Msg) Data() []byte { return m.m.Data }

// Headers are the publisher's headers.
func (m *Msg) Headers() nats.Header { return m.m.Header }

// Pin is the pin the server delivered the message under, "" when the
// consumer has none.
func (m *Msg) Pin() string { return m.pin }

// Metadata is the message's place in the stream and the consumer.
func (m *Msg) Metadata() (*jetstream.MsgMetadata, error) {
	md, err := m.m.Metadata()
	if err != nil {
		return nil, err
	}
	return &jetstream.MsgMetadata{
		Sequence:     jetstream.SequencePair{Consumer: md.Sequence.Consumer, Stream: md.Sequence.Stream},
		NumDelivered: md.NumDelivered, NumPending: md.NumPending, Timestamp: md.Timestamp,
		Stream: md.Stream, Consumer: md.Consumer, Domain: md.Domain,
	}, nil
}

// Ack acknowledges the message.
func (m *Msg) Ack() error { return m.m.Ack() }

// Nak gives the message back for redelivery at once.
func (m *Msg) Nak() error { return m.m.Nak() }

// InProgress resets the message's acknowledgement deadline.
func (m *Msg) InProgress() error { return m.m.InProgress() }

// TermWithReason tells the server never to deliver the message again.
func (m *Msg) TermWithReason(reason string) error { return m.m.Respond([]byte("+TERM " + reason)) }

// fifo is the queue of received messages. Its array is reused: what was
// taken is dropped from the front once it is half the array, so a queue
// that never empties (a long backlog read by a slower writer) does not
// grow with every message delivered.
type fifo struct {
	items []*Msg
	head  int
}

func (q *fifo) push(m *Msg) { q.items = append(q.items, m) }

// pop takes the oldest message, nil when none is left.
func (q *fifo) pop() *Msg {
	if q.head == len(q.items) {
		return nil
	}
	m := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head == len(q.items) || q.head >= 1024 && 2*q.head >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return m
}
