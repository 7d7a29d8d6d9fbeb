// Package pipeline is the ingest consumer loop: fetch from JetStream,
// validate, deduplicate, write one batch to ClickHouse, send rejects to the
// dead-letter stream, and only then acknowledge.
package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/internal/metrics"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
)

// Sink stores accepted events; store.Store is the real one.
type Sink interface {
	Existing(ctx context.Context, ids []store.Identity) (map[store.Identity]bool, error)
	Insert(ctx context.Context, rows []store.Row) error
	Converge(ctx context.Context, ids []store.Identity) (int, error)
}

// Config tunes the loop.
type Config struct {
	Stream, Consumer, DeadLetterStream string
	BatchSize                          int
	FlushInterval                      time.Duration
	MaxLateness                        time.Duration
	AckWait                            time.Duration
}

// Setup creates, when missing, the main stream, the dead-letter stream and
// the durable pull consumer shared by every ingest replica. Several replicas
// may run it at once.
func Setup(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Consumer, error) {
	for _, sc := range []jetstream.StreamConfig{
		contract.ImportStreamConfig(), contract.StreamConfig(c.Stream), contract.DeadLetterStreamConfig(c.DeadLetterStream),
	} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return nil, fmt.Errorf("create or update stream %s: %w", sc.Name, err)
		}
	}
	return ensureConsumer(ctx, js, c)
}

// ensureConsumer creates or updates the durable consumer.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Consumer, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
		Durable:       c.Consumer,
		Description:   "Assoliment ingest, shared by every replica",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: 10 * c.BatchSize,
		FilterSubject: contract.StreamSubjects,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", c.Consumer, c.Stream, err)
	}
	return cons, nil
}

// OriginalHeaderPrefix renames a rejected message's Nats-* headers in its
// dead-letter copy, so the broker does not act on them a second time.
const OriginalHeaderPrefix = "Smartcity-Original-"

// Pipeline consumes one durable consumer.
type Pipeline struct {
	js   jetstream.JetStream
	cons jetstream.Consumer
	sink Sink
	m    *metrics.Metrics
	log  *slog.Logger
	cfg  Config

	mu      sync.Mutex
	healthy bool
}

// New returns a pipeline; Run starts it.
func New(js jetstream.JetStream, cons jetstream.Consumer, sink Sink, m *metrics.Metrics, log *slog.Logger, cfg Config) *Pipeline {
	return &Pipeline{js: js, cons: cons, sink: sink, m: m, log: log, cfg: cfg, healthy: true}
}

// Healthy reports whether the last ClickHouse operation succeeded.
func (p *Pipeline) Healthy() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healthy
}

func (p *Pipeline) setHealthy(ok bool) {
	p.mu.Lock()
	p.healthy = ok
	p.mu.Unlock()
	if ok {
		p.m.ClickHouseUp.Set(1)
	} else {
		p.m.ClickHouseUp.Set(0)
	}
}

// item is one delivered message, decoded.
type item struct {
	msg jetstream.Msg
	seq uint64
	at  time.Time // broker time: the platform clock for the time rules
	ev  *contract.Event
	rej *contract.Rejection
}

// Run consumes until ctx ends, then stops fetching, flushes what it holds,
// acknowledges it and returns.
func (p *Pipeline) Run(ctx context.Context) error {
	p.m.ClickHouseUp.Set(1)
	in := make(chan item, p.cfg.BatchSize)
	go p.fetch(ctx, in)
	go p.watchPending(ctx)

	batch := make([]item, 0, p.cfg.BatchSize)
	tick := time.NewTicker(p.cfg.FlushInterval)
	defer tick.Stop()
	flush := func(fctx context.Context) {
		if len(batch) > 0 {
			p.flush(fctx, batch)
			clear(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case it := <-in:
			batch = append(batch, it)
			if len(batch) >= p.cfg.BatchSize {
				flush(ctx)
			}
		case <-tick.C:
			flush(ctx)
		case <-ctx.Done():
			// fetch drains its iterator: what was already delivered arrives
			// on in, which it then closes.
			fctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			for it := range in {
				batch = append(batch, it)
				if len(batch) >= p.cfg.BatchSize {
					flush(fctx)
				}
			}
			flush(fctx)
			cancel()
			return nil
		}
	}
}

// fetch reads messages and decodes them until ctx ends, then drains what
// was already delivered and closes in. An iterator that ends on its own (the
// consumer was deleted, say) is replaced, with the consumer, after a pause.
func (p *Pipeline) fetch(ctx context.Context, in chan<- item) {
	defer close(in)
	cons := p.cons
	for {
		iter, err := cons.Messages(jetstream.PullMaxMessages(p.cfg.BatchSize))
		if err == nil {
			stop := context.AfterFunc(ctx, iter.Drain)
			err = p.read(iter, in)
			stop()
		}
		if ctx.Err() != nil {
			return
		}
		p.log.Error("consuming stopped; starting again", "consumer", p.cfg.Consumer, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		if c, err := ensureConsumer(ctx, p.js, p.cfg); err == nil {
			cons = c
		}
	}
}

// read decodes the iterator's messages into in until it ends.
func (p *Pipeline) read(iter jetstream.MessagesContext, in chan<- item) error {
	rules := contract.Rules{MaxLateness: p.cfg.MaxLateness}
	for {
		msg, err := iter.Next()
		if err != nil {
			return err
		}
		it := item{msg: msg, at: time.Now()}
		if md, err := msg.Metadata(); err == nil {
			it.seq, it.at = md.Sequence.Stream, md.Timestamp
		}
		rules.Now = it.at
		it.ev, it.rej = contract.Decode(msg.Subject(), msg.Data(), rules)
		in <- it
	}
}

func (p *Pipeline) watchPending(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
			info, err := p.cons.Info(ictx)
			cancel()
			if err == nil {
				p.m.Pending.Set(float64(info.NumPending))
			}
		}
	}
}

// flush handles one batch: dead letters first, then the look-up of stored
// identities and one insert, retried until they succeed or ctx ends; only
// then every message of the batch is acknowledged. Nothing is acknowledged
// that is not safely stored or dead-lettered.
func (p *Pipeline) flush(ctx context.Context, batch []item) {
	p.m.BatchSize.Observe(float64(len(batch)))
	var rejects []item
	first := make(map[store.Identity]int, len(batch)) // identity -> index of the copy that stands
	for i, it := range batch {
		if it.rej != nil {
			rejects = append(rejects, it)
			continue
		}
		id := store.Identity{Municipality: it.ev.Municipality, Publisher: it.ev.Publisher, ID: it.ev.ID}
		if j, ok := first[id]; !ok || it.seq < batch[j].seq {
			first[id] = i
		}
	}
	stop := p.keepAlive(ctx, batch)
	defer stop()

	if len(rejects) > 0 && !p.retry(ctx, "dead-letter", func(ctx context.Context) error { return p.deadLetter(ctx, rejects) }) {
		return
	}
	ids := make([]store.Identity, 0, len(first))
	var measurementIDs []store.Identity
	for id, i := range first {
		ids = append(ids, id)
		if batch[i].ev.Kind() == contract.KindMeasurement {
			measurementIDs = append(measurementIDs, id)
		}
	}
	var rows []store.Row
	// sent holds the stream sequences this flush has sent in an insert, so
	// that rows an attempt committed before its connection failed are still
	// counted as stored by the retry that finds them, not as duplicates.
	sent := make(map[uint64]bool, len(first))
	start := time.Now()
	ok := p.retry(ctx, "clickhouse", func(ctx context.Context) error {
		stored, err := p.sink.Existing(ctx, ids)
		if err != nil {
			return err
		}
		rows = rows[:0]
		for id, i := range first {
			if !stored[id] {
				rows = append(rows, store.Row{Event: batch[i].ev, StreamSeq: batch[i].seq, IngestedAt: batch[i].at})
			}
		}
		for _, r := range rows {
			sent[r.StreamSeq] = true
		}
		if err := p.sink.Insert(ctx, rows); err != nil {
			return err
		}
		// Another replica may have stored a copy of the same identity at
		// the same moment: find and merge such copies before acknowledging.
		// Every measurement of the batch is checked, not only this
		// attempt's rows, so a retry after a failure here checks again.
		n, err := p.sink.Converge(ctx, measurementIDs)
		if n > 0 {
			p.log.Warn("identities stored twice by concurrent replicas; merged", "count", n)
		}
		return err
	})
	if !ok {
		return
	}
	p.m.InsertDuration.Observe(time.Since(start).Seconds())
	for i, it := range batch {
		switch {
		case it.rej != nil:
			p.m.Events.WithLabelValues(typeLabel(it.msg.Data()), metrics.Rejected).Inc()
			p.m.Rejections.WithLabelValues(string(it.rej.Reason)).Inc()
		case first[store.Identity{Municipality: it.ev.Municipality, Publisher: it.ev.Publisher, ID: it.ev.ID}] == i && sent[it.seq]:
			p.m.Events.WithLabelValues(it.ev.Type, metrics.Stored).Inc()
		default:
			p.m.Events.WithLabelValues(it.ev.Type, metrics.Duplicate).Inc()
		}
		if err := it.msg.Ack(); err != nil {
			p.log.Warn("ack", "seq", it.seq, "err", err)
		}
	}
}

// retry runs op until it succeeds or ctx ends, backing off up to 5 s.
func (p *Pipeline) retry(ctx context.Context, what string, op func(context.Context) error) bool {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			if what == "clickhouse" {
				p.setHealthy(true)
			}
			return true
		}
		if what == "clickhouse" {
			p.m.InsertErrors.Inc()
			p.setHealthy(false)
		}
		p.log.Error("batch not stored yet; retrying", "step", what, "attempt", attempt, "retry_in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			p.log.Warn("batch left unacknowledged for redelivery", "step", what)
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// keepAlive tells the broker the batch is still in progress while a flush
// lasts longer than a third of the ack wait, so a ClickHouse outage does not
// cause redeliveries.
func (p *Pipeline) keepAlive(ctx context.Context, batch []item) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(p.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				for _, it := range batch {
					_ = it.msg.InProgress()
				}
			}
		}
	}()
	return func() { close(done) }
}

// deadLetter stores each rejected message whole in the dead-letter stream,
// with its subject and reason, and waits for the broker's acks.
func (p *Pipeline) deadLetter(ctx context.Context, rejects []item) error {
	futures := make([]jetstream.PubAckFuture, 0, len(rejects))
	for _, it := range rejects {
		h := nats.Header{}
		for k, v := range it.msg.Headers() {
			// JetStream obeys Nats-* headers (expected stream or sequence,
			// roll-up, TTL…): copied as they are, a publisher's header could
			// make the dead-letter stream refuse the copy and stall the
			// consumer. They are kept under another name.
			if len(k) >= 5 && strings.EqualFold(k[:5], "Nats-") {
				k = OriginalHeaderPrefix + k
			}
			h[k] = append([]string(nil), v...)
		}
		h.Set(contract.HeaderSubject, it.msg.Subject())
		h.Set(contract.HeaderReason, string(it.rej.Reason))
		h.Set(contract.HeaderDetail, it.rej.Message)
		h.Set(contract.HeaderStreamSeq, strconv.FormatUint(it.seq, 10))
		h.Set(contract.HeaderReceivedAt, it.at.UTC().Format(time.RFC3339Nano))
		h.Set(nats.MsgIdHdr, "dlq-"+p.cfg.Stream+"-"+strconv.FormatUint(it.seq, 10))
		f, err := p.js.PublishMsgAsync(&nats.Msg{
			Subject: contract.DeadLetterSubject(it.rej.Reason), Header: h, Data: it.msg.Data(),
		})
		if err != nil {
			return fmt.Errorf("dead-letter seq %d: %w", it.seq, err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("dead-letter %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// typeLabel is the CloudEvents type of a rejected message when it names a
// known one, else "unknown" (keeps label values bounded).
func typeLabel(b []byte) string {
	for _, t := range contract.Types {
		if containsType(b, t) {
			return t
		}
	}
	return "unknown"
}

func containsType(b []byte, t string) bool {
	return bytes.Contains(b, []byte(`"`+t+`"`))
}
