// Package pipeline is the ingest consumer loop: fetch from JetStream,
// validate, deduplicate, write one batch to ClickHouse, send rejects to the
// dead-letter stream, and only then acknowledge.
//
// Whatever a publisher sends, the loop settles it in bounded time: stored,
// or dead-lettered (its headers trimmed to what JetStream allows when they
// are too large), or, when even that is refused for good, terminated and
// counted. Only failures a retry can cure (ClickHouse or NATS unavailable)
// hold a batch, and then every publisher waits alike.
package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
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
	// BatchSize and BatchBytes bound a batch: it is flushed when either is
	// reached, or every FlushInterval.
	BatchSize     int
	BatchBytes    int
	FlushInterval time.Duration
	MaxLateness   time.Duration
	AckWait       time.Duration
	// StreamMaxBytes, DeadLetterMaxAge and DeadLetterMaxBytes override the
	// streams' default limits when not zero.
	StreamMaxBytes     int64
	DeadLetterMaxAge   time.Duration
	DeadLetterMaxBytes int64
	// Replicas is how many servers of a NATS cluster keep each stream
	// (1 on a single server, 3 in a three-node cluster).
	Replicas int
	// Publishers are the configured publishers: the publisher label of a
	// rejection is the subject's publisher token when it is one of them.
	Publishers map[string]bool
}

// ShutdownGrace is how long, after the loop is told to stop, it keeps
// trying to store and acknowledge what was already delivered.
const ShutdownGrace = 20 * time.Second

// Streams returns the configurations of the import, main and dead-letter
// streams with c's limits.
func (c Config) Streams() []jetstream.StreamConfig {
	main := contract.StreamConfig(c.Stream)
	if c.StreamMaxBytes > 0 {
		main.MaxBytes = c.StreamMaxBytes
	}
	dlq := contract.DeadLetterStreamConfig(c.DeadLetterStream)
	if c.DeadLetterMaxAge > 0 {
		dlq.MaxAge = c.DeadLetterMaxAge
	}
	if c.DeadLetterMaxBytes > 0 {
		dlq.MaxBytes = c.DeadLetterMaxBytes
	}
	streams := []jetstream.StreamConfig{contract.ImportStreamConfig(), main, dlq}
	for i := range streams {
		streams[i].Replicas = max(c.Replicas, 1)
	}
	return streams
}

// Setup creates, when missing, the main stream, the dead-letter stream and
// the durable pull consumer shared by every ingest replica, and brings
// existing ones to the configuration. Several replicas may run it at once:
// in a NATS cluster, replicas racing to create the same streams can see
// their requests time out while the cluster settles, so each step is tried
// again for up to SetupPatience.
func Setup(ctx context.Context, js jetstream.JetStream, c Config, log *slog.Logger) (jetstream.Consumer, error) {
	deadline := time.Now().Add(SetupPatience)
	try := func(what string, op func(context.Context) error) error {
		for attempt := 1; ; attempt++ {
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := op(actx)
			cancel()
			if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
				return err
			}
			log.Warn("NATS set-up not done yet; retrying", "step", what, "attempt", attempt, "err", err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	for _, sc := range c.Streams() {
		if err := try("stream "+sc.Name, func(ctx context.Context) error {
			_, err := js.CreateOrUpdateStream(ctx, sc)
			return err
		}); err != nil {
			return nil, fmt.Errorf("create or update stream %s: %w", sc.Name, err)
		}
	}
	var cons jetstream.Consumer
	err := try("consumer "+c.Consumer, func(ctx context.Context) (err error) {
		cons, err = ensureConsumer(ctx, js, c)
		return err
	})
	return cons, err
}

// SetupPatience is how long Setup keeps trying.
const SetupPatience = time.Minute

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

// Msg is what the loop needs of a delivered message; jetstream.Msg is the
// real one.
type Msg interface {
	Subject() string
	Data() []byte
	Headers() nats.Header
	Metadata() (*jetstream.MsgMetadata, error)
	Ack() error
	InProgress() error
	TermWithReason(reason string) error
}

// Source delivers messages until it is drained; jetstream.Consumer's
// Messages iterator is the real one.
type Source interface {
	// Messages starts delivering, holding at most maxBytes undelivered.
	Messages(maxBytes int) (Iterator, error)
}

// Iterator is a running delivery: Next blocks for the next message; Drain
// stops fetching, lets Next return what was already fetched, then ends it
// with an error.
type Iterator interface {
	Next() (Msg, error)
	Drain()
}

// Publisher stores dead letters; jetstream.JetStream is the real one.
type Publisher interface {
	PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Pipeline consumes one durable consumer.
type Pipeline struct {
	src   Source
	dlq   Publisher
	sink  Sink
	m     *metrics.Metrics
	log   *slog.Logger
	cfg   Config
	renew func(context.Context) (Source, error) // a new source after the old one ended on its own
	info  func(context.Context) (*jetstream.ConsumerInfo, error)

	mu      sync.Mutex
	healthy bool
}

// New returns a pipeline on the durable consumer cons; Run starts it.
func New(js jetstream.JetStream, cons jetstream.Consumer, sink Sink, m *metrics.Metrics, log *slog.Logger, cfg Config) *Pipeline {
	p := NewWith(consumerSource{cons}, js, sink, m, log, cfg)
	p.renew = func(ctx context.Context) (Source, error) {
		c, err := ensureConsumer(ctx, js, cfg)
		if err != nil {
			return nil, err
		}
		return consumerSource{c}, nil
	}
	p.info = func(ctx context.Context) (*jetstream.ConsumerInfo, error) { return cons.Info(ctx) }
	return p
}

// NewWith returns a pipeline on any source, dead-letter publisher and sink.
func NewWith(src Source, dlq Publisher, sink Sink, m *metrics.Metrics, log *slog.Logger, cfg Config) *Pipeline {
	return &Pipeline{src: src, dlq: dlq, sink: sink, m: m, log: log, cfg: cfg, healthy: true}
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
	msg  Msg
	seq  uint64
	at   time.Time // broker time: the platform clock for the time rules
	size int       // body and header bytes
	ev   *contract.Event
	rej  *contract.Rejection
	// settled is set once the message's dead letter is stored (or it is
	// terminated), so a retry of the batch does not send it again.
	settled    bool
	terminated bool
}

// batch holds delivered items until a flush.
type batch struct {
	items []item
	bytes int
}

func (b *batch) add(it item) {
	b.items = append(b.items, it)
	b.bytes += it.size
}

func (b *batch) full(c Config) bool {
	return len(b.items) >= c.BatchSize || b.bytes >= c.BatchBytes
}

func (b *batch) reset() {
	clear(b.items)
	b.items = b.items[:0]
	b.bytes = 0
}

// Run consumes until ctx ends, then stops fetching, flushes what it holds,
// acknowledges it and returns. Flushes outlive ctx by ShutdownGrace, so
// that what was delivered before a stop is stored and acknowledged rather
// than redelivered.
func (p *Pipeline) Run(ctx context.Context) error {
	p.m.ClickHouseUp.Set(1)
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, func() { time.AfterFunc(ShutdownGrace, cancel) })()

	in := make(chan item, 256)
	go p.fetch(ctx, in)
	if p.info != nil {
		go p.watchPending(ctx)
	}
	b := batch{items: make([]item, 0, p.cfg.BatchSize)}
	flush := func() {
		if len(b.items) > 0 {
			p.flush(fctx, b.items)
			b.reset()
		}
	}
	tick := time.NewTicker(p.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case it, ok := <-in:
			if !ok { // fetch has stopped: ctx ended and every delivered message has arrived
				flush()
				return nil
			}
			b.add(it)
			if b.full(p.cfg) {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

// fetch reads messages and decodes them until ctx ends, then drains what
// was already delivered and closes in. An iterator that ends on its own (the
// consumer was deleted, say) is replaced, with the consumer, after a pause.
func (p *Pipeline) fetch(ctx context.Context, in chan<- item) {
	defer close(in)
	src := p.src
	for {
		// The client holds at most one batch's worth of bytes besides the
		// batch being filled, whatever the size of the messages waiting.
		iter, err := src.Messages(p.cfg.BatchBytes)
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
		if p.renew != nil {
			if s, err := p.renew(ctx); err == nil {
				src = s
			}
		}
	}
}

// read decodes the iterator's messages into in until it ends.
func (p *Pipeline) read(iter Iterator, in chan<- item) error {
	rules := contract.Rules{MaxLateness: p.cfg.MaxLateness}
	for {
		msg, err := iter.Next()
		if err != nil {
			return err
		}
		it := item{msg: msg, at: time.Now(), size: len(msg.Data()) + headerSize(msg.Headers())}
		if md, err := msg.Metadata(); err == nil {
			it.seq, it.at = md.Sequence.Stream, md.Timestamp
		}
		rules.Now = it.at
		it.ev, it.rej = contract.DecodeMessage(msg.Subject(), msg.Headers(), msg.Data(), rules)
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
			info, err := p.info(ictx)
			cancel()
			if err == nil {
				p.m.Pending.Set(float64(info.NumPending))
			}
		}
	}
}

func identity(e *contract.Event) store.Identity {
	return store.Identity{Municipality: e.Municipality, Publisher: e.Publisher, ID: e.ID}
}

// flush handles one batch: dead letters first, then the look-up of stored
// identities and one insert, retried until they succeed or ctx ends; only
// then every message of the batch is acknowledged. Nothing is acknowledged
// that is not safely stored or dead-lettered.
func (p *Pipeline) flush(ctx context.Context, batch []item) {
	p.m.BatchSize.Observe(float64(len(batch)))
	var rejects []*item
	first := make(map[store.Identity]int, len(batch)) // identity -> index of the copy that stands
	for i := range batch {
		it := &batch[i]
		if it.rej != nil {
			rejects = append(rejects, it)
			continue
		}
		id := identity(it.ev)
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
	ok := len(ids) == 0 || p.retry(ctx, "clickhouse", func(ctx context.Context) error {
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
	if len(ids) > 0 {
		p.m.InsertDuration.Observe(time.Since(start).Seconds())
	}
	for i := range batch {
		it := &batch[i]
		switch {
		case it.rej != nil:
			p.m.Events.WithLabelValues(typeLabel(it.msg), metrics.Rejected).Inc()
			p.m.Rejections.WithLabelValues(string(it.rej.Reason), p.publisherLabel(it.msg.Subject())).Inc()
		case first[identity(it.ev)] == i && sent[it.seq]:
			p.m.Events.WithLabelValues(it.ev.Type, metrics.Stored).Inc()
		default:
			p.m.Events.WithLabelValues(it.ev.Type, metrics.Duplicate).Inc()
		}
		var err error
		if it.terminated {
			err = it.msg.TermWithReason("dead-letter stream refused it")
		} else {
			err = it.msg.Ack()
		}
		if err != nil {
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
// cause redeliveries. stop returns once the keep-alive has stopped touching
// the batch.
func (p *Pipeline) keepAlive(ctx context.Context, batch []item) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(p.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				for i := range batch {
					_ = batch[i].msg.InProgress()
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// letterForm is how much of a rejected message's headers its dead letter
// carries.
type letterForm int

const (
	withHeaders    letterForm = iota // the original headers, within DeadLetterHeaderBudget
	withoutHeaders                   // only the dead-letter headers
)

// deadLetter stores each rejected message whole in the dead-letter stream,
// with its subject and reason, and waits for the broker's acks. It returns
// an error only when a retry may cure it. A dead letter the stream refuses
// for good (a 4xx-class error: headers or message too large, say) is sent
// again without the original headers, and when that is refused too the
// message is marked terminated: it stays in the main stream until its age
// limit, and is counted and logged.
func (p *Pipeline) deadLetter(ctx context.Context, rejects []*item) error {
	pending := make([]*item, 0, len(rejects))
	for _, it := range rejects {
		if !it.settled {
			pending = append(pending, it)
		}
	}
	for _, form := range []letterForm{withHeaders, withoutHeaders} {
		if len(pending) == 0 {
			return nil
		}
		errs := p.publishLetters(ctx, pending, form)
		var refused []*item
		for i, it := range pending {
			switch err := errs[i]; {
			case err == nil:
				it.settled = true
			case permanent(err):
				p.log.Warn("dead-letter stream refused a dead letter", "seq", it.seq, "subject", it.msg.Subject(),
					"with_original_headers", form == withHeaders, "err", err)
				refused = append(refused, it)
			default:
				return fmt.Errorf("dead-letter seq %d: %w", it.seq, err)
			}
		}
		pending = refused
	}
	for _, it := range pending {
		p.log.Error("message neither storable nor dead-letterable; terminated, it stays in the main stream until its age limit",
			"seq", it.seq, "subject", it.msg.Subject(), "reason", it.rej.Reason)
		p.m.Terminated.Inc()
		it.settled, it.terminated = true, true
	}
	return nil
}

// publishLetters publishes the dead letters of items in the given form and
// returns each one's outcome.
func (p *Pipeline) publishLetters(ctx context.Context, items []*item, form letterForm) []error {
	errs := make([]error, len(items))
	futures := make([]jetstream.PubAckFuture, len(items))
	for i, it := range items {
		m, trimmed := p.letter(it, form)
		if trimmed {
			p.m.DeadLettersTrimmed.Inc()
		}
		futures[i], errs[i] = p.dlq.PublishMsgAsync(m)
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = err
		case <-ctx.Done():
			errs[i] = ctx.Err()
		}
	}
	return errs
}

// letter builds the dead letter of it: the body whole, the original headers
// (Nats-* ones renamed) as far as DeadLetterHeaderBudget allows, and the
// reason headers. trimmed says whether original headers were left out.
func (p *Pipeline) letter(it *item, form letterForm) (m *nats.Msg, trimmed bool) {
	h := nats.Header{}
	h.Set(contract.HeaderSubject, it.msg.Subject())
	h.Set(contract.HeaderReason, string(it.rej.Reason))
	h.Set(contract.HeaderDetail, it.rej.Message)
	h.Set(contract.HeaderStreamSeq, strconv.FormatUint(it.seq, 10))
	h.Set(contract.HeaderReceivedAt, it.at.UTC().Format(time.RFC3339Nano))
	h.Set(nats.MsgIdHdr, "dlq-"+p.cfg.Stream+"-"+strconv.FormatUint(it.seq, 10))
	// Room for the line that reports what was dropped.
	budget := contract.DeadLetterHeaderBudget - headerSize(h) - 128
	var droppedValues, droppedBytes int
	orig := it.msg.Headers()
	keys := make([]string, 0, len(orig))
	for k := range orig {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		// JetStream obeys Nats-* headers (expected stream or sequence,
		// roll-up, TTL…): copied as they are, a publisher's header could
		// make the dead-letter stream refuse the copy. They are kept under
		// another name.
		if len(name) >= 5 && strings.EqualFold(name[:5], "Nats-") {
			name = OriginalHeaderPrefix + name
		}
		for _, v := range orig[k] {
			line := len(name) + len(v) + 4 // "k: v\r\n"
			if form == withoutHeaders || line > budget {
				droppedValues++
				droppedBytes += line
				continue
			}
			h[name] = append(h[name], v)
			budget -= line
		}
	}
	if droppedValues > 0 {
		h.Set(contract.HeaderDropped, fmt.Sprintf("%d values, %d bytes: JetStream limits headers to 64 KiB", droppedValues, droppedBytes))
	}
	return &nats.Msg{Subject: contract.DeadLetterSubject(it.msg.Subject(), it.rej.Reason), Header: h, Data: it.msg.Data()}, droppedValues > 0
}

// headerSize is the size of h on the wire, near enough for budgets.
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// permanent reports whether err is a refusal that no retry can cure: a
// JetStream API error of the 4xx class (other than a timeout or throttle),
// or a message the client itself refuses to send.
func permanent(err error) bool {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		return api.Code >= 400 && api.Code < 500 && api.Code != http.StatusRequestTimeout && api.Code != http.StatusTooManyRequests
	}
	return errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadHeaderMsg)
}

// publisherLabel is the publisher token of subject when it is a configured
// publisher (the broker authenticated it), else metrics.UnknownPublisher.
func (p *Pipeline) publisherLabel(subject string) string {
	if t := strings.Split(subject, "."); len(t) == 4 && p.cfg.Publishers[t[2]] {
		return t[2]
	}
	return metrics.UnknownPublisher
}

// typeLabel is the CloudEvents type of a rejected message when it names a
// known one (in its ce-type header or its body), else "unknown": label
// values stay bounded whatever a publisher sends.
func typeLabel(m Msg) string {
	var headerType []string
	for k, v := range m.Headers() {
		if strings.EqualFold(k, contract.AttributeHeaderPrefix+"type") {
			headerType = v
		}
	}
	for _, t := range contract.Types {
		if slices.Contains(headerType, t) || bytes.Contains(m.Data(), []byte(`"`+t+`"`)) {
			return t
		}
	}
	return "unknown"
}

// consumerSource adapts a JetStream consumer.
type consumerSource struct{ c jetstream.Consumer }

func (s consumerSource) Messages(maxBytes int) (Iterator, error) {
	it, err := s.c.Messages(jetstream.PullMaxBytes(maxBytes))
	if err != nil {
		return nil, err
	}
	return iterator{it}, nil
}

type iterator struct{ it jetstream.MessagesContext }

func (i iterator) Next() (Msg, error) { return i.it.Next() }
func (i iterator) Drain()             { i.it.Drain() }
