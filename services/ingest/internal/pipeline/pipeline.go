// Package pipeline is the ingest consumer loop: fetch from JetStream,
// validate, deduplicate, write one batch to ClickHouse, send rejects to the
// dead-letter stream, and only then acknowledge.
//
// One replica writes at a time: the durable consumer delivers to one pinned
// client, and the others wait as standbys. A batch is looked up in the
// identity index, recorded in it and inserted; the check for identities
// stored twice by two writers runs only for a batch that may have raced
// with another writer (see raceCheck).
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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
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
	"github.com/assoliment/assoliment/services/ingest/internal/pull"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
)

// Sink stores accepted events; store.Store is the real one.
type Sink interface {
	// Stored says which of ids are stored.
	Stored(ctx context.Context, ids []store.Identity) (map[store.Identity]bool, error)
	// Remember records the rows' identities in the index, before Insert.
	Remember(ctx context.Context, rows []store.Row) error
	Insert(ctx context.Context, rows []store.Row) error
	// Converge merges measurements of ids stored more than once and says
	// how many were.
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

// The one-writer settings of the durable consumer and its pulls.
const (
	// Group is the consumer's priority group: every replica pulls in it,
	// and the server delivers to one pinned client at a time.
	Group = "ingest"
	// PinnedTTL is how long the server keeps a client pinned without a
	// new pull request from it. A client pulls at least every PullExpires,
	// and more often while it takes messages, and while a slow write holds
	// it up it keeps the pin with pull requests that take nothing
	// (keepPin); so it keeps the pin unless it is gone or stuck outside a
	// write for this long, and a standby then takes over. A starting
	// replica takes over at once (takeOver).
	PinnedTTL = 10 * time.Second
	// PullExpires is the life of a pull request, PullHeartbeat how often
	// the server says one is still waiting.
	PullExpires   = 3 * time.Second
	PullHeartbeat = time.Second
	// RaceGrace bounds the ClickHouse step of a batch that counts as
	// quick: a slower one checks for copies stored by another writer, and
	// a writer that finds it lost its pin waits this long after its insert
	// before checking, so that a quick batch of the new writer that raced
	// with it has been inserted. It must stay below two thirds of the
	// shortest ACK_WAIT (5 s): see raceCheck.
	RaceGrace = 2 * time.Second
)

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
			// A stream already so configured is left alone: replicas start
			// together, and nats-server 2.15.2 races on concurrent updates
			// of one stream (its -race build says so).
			if s, err := js.Stream(ctx, sc.Name); err == nil && !StreamNeedsUpdate(sc, s.CachedInfo().Config) {
				return nil
			}
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

// StreamNeedsUpdate says whether a stream configured as have differs from
// want in a setting want gives: the server fills in what want leaves
// empty (0 where it stores -1 for "no limit", say), so only the settings
// want names are compared, through their JSON form.
func StreamNeedsUpdate(want, have jetstream.StreamConfig) bool {
	fields := func(c jetstream.StreamConfig) map[string]any {
		b, err := json.Marshal(c)
		if err != nil {
			return nil
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			return nil
		}
		return m
	}
	w, h := fields(want), fields(have)
	if w == nil || h == nil {
		return true
	}
	for k, v := range w {
		if n, ok := v.(float64); ok && n == 0 {
			if hn, ok := h[k].(float64); !ok || hn == 0 || hn == -1 {
				continue // left to the server's default
			}
			return true
		}
		if !reflect.DeepEqual(v, h[k]) {
			return true
		}
	}
	return false
}

// SetupPatience is how long Setup keeps trying.
const SetupPatience = time.Minute

// ensureConsumer creates or updates the durable consumer.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, c Config) (jetstream.Consumer, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
		Durable:        c.Consumer,
		Description:    "Assoliment ingest: every replica pulls, one pinned replica at a time gets messages",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  MaxAckPending(c.BatchSize),
		FilterSubject:  contract.StreamSubjects,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PinnedTTL:      PinnedTTL,
		PriorityGroups: []string{Group},
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w", c.Consumer, c.Stream, err)
	}
	return cons, nil
}

// MaxAckPending is the consumer's allowance of unacknowledged messages. A
// replica holds at most 6 × batchSize of them (the batches being settled,
// inserted, prepared and filled, the decoded ones waiting and what its
// client fetched), and a replica killed with SIGKILL leaves its own
// pending until ACK_WAIT passes: the allowance lets the messages of five
// killed processes wait for redelivery while the writer goes on taking new
// ones.
func MaxAckPending(batchSize int) int { return 36 * batchSize }

// OriginalHeaderPrefix renames a rejected message's Nats-* headers in its
// dead-letter copy, so the broker does not act on them a second time.
const OriginalHeaderPrefix = "Smartcity-Original-"

// Msg is what the loop needs of a delivered message; pull.Msg is the real
// one.
type Msg interface {
	Subject() string
	Data() []byte
	// Headers are the publisher's.
	Headers() nats.Header
	Metadata() (*jetstream.MsgMetadata, error)
	// Pin is the pin the server delivered the message under ("" for none).
	Pin() string
	Ack() error
	Nak() error
	InProgress() error
	TermWithReason(reason string) error
}

// Source delivers messages until it is drained; pull.Consumer is the real
// one.
type Source interface {
	// Messages starts delivering, holding at most a batch's worth of
	// messages and bytes fetched and not yet taken.
	Messages() (Iterator, error)
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
	// unpin releases the consumer's pin, whoever holds it.
	unpin func(context.Context) error
	// sleep waits d or until ctx ends (tests replace it).
	sleep func(ctx context.Context, d time.Duration) error

	mu      sync.Mutex
	healthy bool
	lastPin string          // of the last message received
	lost    map[string]bool // pins this process held and lost
	iter    Iterator        // the running one
	busy    int             // batches being prepared, inserted or settled
	// pending are the prepared batches with rows to insert that have not
	// inserted them yet.
	pending map[*writtenBatch]bool
}

// New returns a pipeline on the durable consumer cons; Run starts it.
func New(nc *nats.Conn, js jetstream.JetStream, cons jetstream.Consumer, sink Sink, m *metrics.Metrics, log *slog.Logger, cfg Config) *Pipeline {
	p := NewWith(puller(nc, cfg), js, sink, m, log, cfg)
	p.renew = func(ctx context.Context) (Source, error) {
		if _, err := ensureConsumer(ctx, js, cfg); err != nil {
			return nil, err
		}
		return puller(nc, cfg), nil
	}
	p.info = func(ctx context.Context) (*jetstream.ConsumerInfo, error) { return cons.Info(ctx) }
	p.unpin = func(ctx context.Context) error {
		s, err := js.Stream(ctx, cfg.Stream)
		if err != nil {
			return err
		}
		return s.UnpinConsumer(ctx, cfg.Consumer, Group)
	}
	return p
}

// NewWith returns a pipeline on any source, dead-letter publisher and sink.
func NewWith(src Source, dlq Publisher, sink Sink, m *metrics.Metrics, log *slog.Logger, cfg Config) *Pipeline {
	return &Pipeline{src: src, dlq: dlq, sink: sink, m: m, log: log, cfg: cfg, healthy: true, sleep: sleep, lost: map[string]bool{},
		pending: map[*writtenBatch]bool{}}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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
	msg       Msg
	seq       uint64
	at        time.Time // broker time: the platform clock for the time rules
	size      int       // body and header bytes
	delivered uint64    // how many times the server delivered it
	pin       string
	ev        *contract.Event
	rej       *contract.Rejection
	// settled is set once the message's dead letter is stored (or it is
	// terminated), so a retry of the batch does not send it again.
	settled    bool
	terminated bool
	// sent is set once the event's row was sent in an insert.
	sent bool
}

// Run consumes until ctx ends, then stops fetching, flushes what it holds,
// acknowledges it and returns. Flushes outlive ctx by ShutdownGrace, so
// that what was delivered before a stop is stored and acknowledged rather
// than redelivered. Four batches are at work at once: one filling, one
// being prepared (dead letters, look-up, index), one being inserted and one
// being settled (race check when needed, acknowledgements), each stage by
// one goroutine.
func (p *Pipeline) Run(ctx context.Context) error {
	p.m.ClickHouseUp.Set(1)
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(ctx, func() { time.AfterFunc(ShutdownGrace, cancel) })()

	p.takeOver(ctx)
	in := make(chan item, min(p.cfg.BatchSize, 256))
	go p.fetch(ctx, in)
	if p.info != nil {
		go p.watchPending(ctx)
	}
	go p.keepPin(ctx)
	full, prepared, written := make(chan []item), make(chan *writtenBatch), make(chan *writtenBatch)
	var stages sync.WaitGroup
	stages.Go(func() {
		defer close(prepared)
		for b := range full {
			if w := p.prepare(fctx, b); w != nil {
				prepared <- w
			}
		}
	})
	stages.Go(func() {
		defer close(written)
		// Once an insert has given up (the grace after a stop is over),
		// every later batch is left for redelivery too: one whose rows are
		// all copies of the failed batch's must not be acknowledged
		// before those rows are stored.
		gaveUp := false
		for w := range prepared {
			switch {
			case gaveUp:
				p.setPending(w, false)
				w.stop()
				p.setBusy(-1)
			case p.insert(fctx, w):
				written <- w
			default:
				gaveUp = true
			}
		}
	})
	stages.Go(func() {
		for w := range written {
			p.settle(fctx, w)
		}
	})
	var b []item
	bytes, due := 0, false
	tick := time.NewTicker(p.cfg.FlushInterval)
	defer tick.Stop()
	for {
		isFull := len(b) >= p.cfg.BatchSize || bytes >= p.cfg.BatchBytes
		var take <-chan item = in
		var hand chan<- []item
		if isFull {
			take = nil // the writer is busy and the batch full: wait
		}
		if len(b) > 0 && (isFull || due) {
			hand = full
		}
		select {
		case it, ok := <-take:
			if !ok { // fetch has stopped: ctx ended and every delivered message has arrived
				if len(b) > 0 {
					full <- b
				}
				close(full)
				stages.Wait()
				p.release(fctx)
				return nil
			}
			b = append(b, it)
			bytes += it.size
		case hand <- b:
			b, bytes, due = nil, 0, false
		case <-tick.C:
			due = len(b) > 0
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
		// The client holds at most one batch's worth of messages and bytes
		// besides the batches, whatever the size of the messages waiting.
		iter, err := src.Messages()
		if err == nil {
			p.mu.Lock()
			p.iter = iter
			p.mu.Unlock()
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
		it := item{msg: msg, at: time.Now(), size: len(msg.Data()) + headerSize(msg.Headers()), pin: msg.Pin()}
		if md, err := msg.Metadata(); err == nil {
			it.seq, it.at, it.delivered = md.Sequence.Stream, md.Timestamp, md.NumDelivered
		}
		p.mu.Lock()
		p.lastPin = it.pin
		p.mu.Unlock()
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

// writtenBatch is a batch on its way: prepared (dead letters stored, new
// identities recorded in the index), then inserted, then settled.
type writtenBatch struct {
	batch           []item
	first           map[store.Identity]int // identity -> index of the copy that stands
	stored          map[store.Identity]bool
	rows            []store.Row // to insert
	began, inserted time.Time
	stop            func() // ends the batch's keep-alive
}

// prepare readies one batch for its insert: dead letters first, then the
// look-up of stored identities and the record of the new ones in the
// index, retried until they succeed or ctx ends (then nil: the batch is
// left for redelivery). Messages delivered under a pin this process has
// lost are given back to the server instead, for the writer that holds it
// now. A batch is prepared while the one before is inserted: identities of
// that one (pending) are not stored again but counted as its copies; its
// rows are committed before this batch is acknowledged, since batches are
// settled in order.
func (p *Pipeline) prepare(ctx context.Context, batch []item) (w *writtenBatch) {
	p.m.BatchSize.Observe(float64(len(batch)))
	batch = p.giveBack(batch)
	if len(batch) == 0 {
		return nil
	}
	p.setBusy(1)
	defer func() {
		if w == nil {
			p.setBusy(-1)
		}
	}()
	var rejects []*item
	w = &writtenBatch{batch: batch, first: make(map[store.Identity]int, len(batch))}
	for i := range batch {
		it := &batch[i]
		if it.rej != nil {
			rejects = append(rejects, it)
			continue
		}
		id := identity(it.ev)
		if j, ok := w.first[id]; !ok || it.seq < batch[j].seq {
			w.first[id] = i
		}
	}
	w.stop = p.keepAlive(ctx, batch)
	if len(rejects) > 0 {
		t := time.Now()
		if !p.retry(ctx, "dead-letter", func(ctx context.Context) error { return p.deadLetter(ctx, rejects) }) {
			w.stop()
			return nil
		}
		p.step(metrics.StepDeadLetters, t)
	}
	ids := make([]store.Identity, 0, len(w.first))
	for id := range w.first {
		ids = append(ids, id)
	}
	w.began = time.Now()
	ok := len(ids) == 0 || p.retry(ctx, "clickhouse", func(ctx context.Context) error {
		// Taken before the look-up: a batch that leaves it afterwards has
		// its rows in before the look-up reads.
		pending := p.pendingBatches()
		t := time.Now()
		stored, err := p.sink.Stored(ctx, ids)
		if err != nil {
			return err
		}
		t = p.step(metrics.StepLookup, t)
		w.rows = w.rows[:0]
		for _, id := range ids {
			if i := w.first[id]; !stored[id] && !pending.has(id) {
				w.rows = append(w.rows, store.Row{Event: batch[i].ev, StreamSeq: batch[i].seq, IngestedAt: batch[i].at})
			}
		}
		// The index first: it then holds every stored identity, whatever
		// fails before the rows are in.
		if err := p.sink.Remember(ctx, w.rows); err != nil {
			return err
		}
		p.step(metrics.StepRemember, t)
		w.stored = stored
		return nil
	})
	if !ok {
		w.stop()
		return nil
	}
	for _, r := range w.rows {
		// Sent in an insert: rows an attempt committed before its
		// connection failed are still counted as stored by the retry
		// that finds them, not as duplicates.
		batch[w.first[r.Identity()]].sent = true
	}
	p.setPending(w, true)
	return w
}

// insert inserts a prepared batch's rows, one insert per table, retried
// until they succeed or ctx ends (then false: the batch is left for
// redelivery). A failed insert may have committed some of the tables:
// each retry looks the rows up again and inserts only the missing ones.
func (p *Pipeline) insert(ctx context.Context, w *writtenBatch) bool {
	defer p.setPending(w, false)
	if len(w.first) == 0 {
		return true
	}
	attempt := 0
	ok := p.retry(ctx, "clickhouse", func(ctx context.Context) error {
		rows := w.rows
		if attempt++; attempt > 1 && len(rows) > 0 {
			ids := make([]store.Identity, len(rows))
			for i := range rows {
				ids[i] = rows[i].Identity()
			}
			stored, err := p.sink.Stored(ctx, ids)
			if err != nil {
				return err
			}
			rows = slices.DeleteFunc(slices.Clone(rows), func(r store.Row) bool { return stored[r.Identity()] })
		}
		t := time.Now()
		if err := p.sink.Insert(ctx, rows); err != nil {
			return err
		}
		w.inserted = p.step(metrics.StepInsert, t)
		return nil
	})
	if !ok {
		w.stop()
		p.setBusy(-1)
	}
	return ok
}

// pendingBatches are the identities of the prepared batches not yet
// inserted. Each batch's whole set (first) stands for its rows: an
// identity of it that is not one of its rows was stored before it was
// looked up, so later look-ups find it too. Batches, not identities, are
// listed: copying identities into one set, and out again, took a tenth of
// the process's time.
func (p *Pipeline) pendingBatches() pendingSets {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(pendingSets, 0, len(p.pending))
	for w := range p.pending {
		out = append(out, w.first)
	}
	return out
}

// pendingSets are the identity sets of pending batches.
type pendingSets []map[store.Identity]int

func (s pendingSets) has(id store.Identity) bool {
	for _, set := range s {
		if _, ok := set[id]; ok {
			return true
		}
	}
	return false
}

// setPending marks w pending (its rows are about to be inserted) or not.
func (p *Pipeline) setPending(w *writtenBatch, pending bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pending && len(w.rows) > 0 {
		p.pending[w] = true
	} else {
		delete(p.pending, w)
	}
}

// settle finishes a written batch while the next one is written: the race
// check when the batch may have raced with another writer (retried until
// it succeeds or ctx ends), then the acknowledgement of every message.
// Nothing is acknowledged that is not safely stored or dead-lettered.
func (p *Pipeline) settle(ctx context.Context, w *writtenBatch) {
	defer p.setBusy(-1)
	defer w.stop()
	if len(w.first) > 0 {
		ok := p.retry(ctx, "clickhouse", func(ctx context.Context) error {
			check, err := p.raceCheck(ctx, w.batch, w.first, w.stored, w.began, w.inserted)
			if err != nil || len(check) == 0 {
				return err
			}
			t := time.Now()
			n, err := p.sink.Converge(ctx, check)
			p.step(metrics.StepRaceCheck, t)
			if n > 0 {
				p.log.Warn("identities stored twice by concurrent writers; merged", "count", n)
			}
			return err
		})
		if !ok {
			return
		}
		p.m.InsertDuration.Observe(time.Since(w.began).Seconds())
	}
	t := time.Now()
	p.count(w.batch, w.first)
	for i := range w.batch {
		it := &w.batch[i]
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
	p.step(metrics.StepAck, t)
}

// count adds the outcomes of a stored batch to the event counters, once per
// label set.
func (p *Pipeline) count(batch []item, first map[store.Identity]int) {
	type outcome struct{ typ, outcome string }
	type rejection struct{ reason, publisher string }
	events, rejections := map[outcome]int{}, map[rejection]int{}
	for i := range batch {
		it := &batch[i]
		switch {
		case it.rej != nil:
			events[outcome{typeLabel(it.msg), metrics.Rejected}]++
			rejections[rejection{string(it.rej.Reason), p.publisherLabel(it.msg.Subject())}]++
		case it.sent && first[identity(it.ev)] == i:
			events[outcome{it.ev.Type, metrics.Stored}]++
		default:
			events[outcome{it.ev.Type, metrics.Duplicate}]++
		}
	}
	for o, n := range events {
		p.m.Events.WithLabelValues(o.typ, o.outcome).Add(float64(n))
	}
	for r, n := range rejections {
		p.m.Rejections.WithLabelValues(r.reason, r.publisher).Add(float64(n))
	}
}

func (p *Pipeline) setBusy(d int) {
	p.mu.Lock()
	p.busy += d
	p.mu.Unlock()
}

// keepPin keeps the consumer's pin while batches are being written or
// settled: a write that stays slow for PinnedTTL (ClickHouse struggling,
// or a race check over a large table) would otherwise stop the pulls and
// hand the consumer to a standby that would meet the same ClickHouse,
// making every batch in flight a race to check. A writer that is gone, or
// stuck anywhere else, still loses the pin after PinnedTTL.
func (p *Pipeline) keepPin(ctx context.Context) {
	t := time.NewTicker(PinnedTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		iter, busy := p.iter, p.busy > 0
		p.mu.Unlock()
		if k, ok := iter.(interface{ KeepPin() }); ok && busy {
			k.KeepPin()
		}
	}
}

// step records how long a step of a flush took since t, and returns now.
func (p *Pipeline) step(name string, t time.Time) time.Time {
	now := time.Now()
	p.m.FlushStep.WithLabelValues(name).Observe(now.Sub(t).Seconds())
	return now
}

// raceCheck returns the measurements of the batch to check for copies that
// another writer stored at the same moment, or none. Two writers can both
// store one identity only if each looked it up before the other's rows
// were in (the index is written before the rows, and a look-up after a
// writer's insert returned sees its rows): their ClickHouse steps
// overlapped. The server delivers to one pinned client at a time and never
// gives a pin back once it moved on, so when the consumer still names,
// after this batch's insert, the pin every message of the batch came
// under, no other writer held the pin at any moment from the batch's first
// delivery until now; of two overlapping writers at most one can see that.
// Whoever inserts last finds the pair when it checks afterwards, so:
//
//   - a batch whose pin has moved on (or cannot be confirmed) is checked
//     RaceGrace after its insert: by then a quick batch of the other writer
//     is in, and a slow one checks for itself (next rule);
//   - a batch whose ClickHouse step, retries included, took RaceGrace or
//     longer is checked at once;
//   - a writer killed between its insert and its check leaves its messages
//     unacknowledged: they come back to the writer of the day after
//     ACK_WAIT, which finds their identities stored and checks those (a
//     batch it raced with was quick and is in by then, as RaceGrace is
//     below two thirds of ACK_WAIT, or it was slow and checked itself).
//
// Any other batch is not checked. A batch whose pin has moved on marks it
// lost: the messages this process still holds under it are given back.
func (p *Pipeline) raceCheck(ctx context.Context, batch []item, first map[store.Identity]int, stored map[store.Identity]bool,
	began, inserted time.Time) ([]store.Identity, error) {
	measurements := func(keep func(id store.Identity, i int) bool) []store.Identity {
		var out []store.Identity
		for id, i := range first {
			if batch[i].ev.Kind() == contract.KindMeasurement && keep(id, i) {
				out = append(out, id)
			}
		}
		return out
	}
	all := func(store.Identity, int) bool { return true }
	if inserted.Sub(began) >= RaceGrace {
		p.m.RaceChecks.WithLabelValues(metrics.RaceSlow).Inc()
		return measurements(all), nil
	}
	t := time.Now()
	held := p.pinHeld(ctx, batch)
	p.step(metrics.StepPinCheck, t)
	if !held {
		p.m.RaceChecks.WithLabelValues(metrics.RaceWriterChanged).Inc()
		if err := p.sleep(ctx, time.Until(inserted.Add(RaceGrace))); err != nil {
			return nil, err
		}
		return measurements(all), nil
	}
	redelivered := map[store.Identity]bool{}
	for i := range batch {
		if it := &batch[i]; it.rej == nil && it.delivered > 1 {
			redelivered[identity(it.ev)] = true
		}
	}
	check := measurements(func(id store.Identity, _ int) bool { return redelivered[id] && stored[id] })
	if len(check) > 0 {
		p.m.RaceChecks.WithLabelValues(metrics.RaceRedelivered).Inc()
	}
	return check, nil
}

// pinHeld reports whether the consumer's pin is the one every message of
// batch was delivered under. A pin found moved on is marked lost.
func (p *Pipeline) pinHeld(ctx context.Context, batch []item) bool {
	pin := batch[0].pin
	for i := range batch {
		if batch[i].pin != pin {
			return false
		}
	}
	if pin == "" || p.info == nil {
		return false
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	info, err := p.info(ictx)
	cancel()
	if err != nil {
		p.log.Warn("the consumer's pin could not be read; checking the batch for copies stored by another writer", "err", err)
		return false
	}
	for _, g := range info.PriorityGroups {
		if g.Group == Group && g.PinnedClientID == pin {
			return true
		}
	}
	p.mu.Lock()
	p.lost[pin] = true
	p.mu.Unlock()
	p.log.Warn("another replica took over the consumer; the messages this one still holds go back to it")
	return false
}

// giveBack returns the messages of batch delivered under a pin this
// process has lost to the server at once (negative acknowledgement), for
// the writer that holds the pin now, and keeps the others.
func (p *Pipeline) giveBack(batch []item) []item {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lost) == 0 {
		return batch
	}
	kept := batch[:0]
	for _, it := range batch {
		if !p.lost[it.pin] {
			kept = append(kept, it)
			continue
		}
		if err := it.msg.Nak(); err != nil {
			p.log.Warn("nak", "seq", it.seq, "err", err)
		}
		p.m.GivenBack.Inc()
	}
	return kept
}

// takeOver releases the consumer's pin before the first pull, so that a
// process started after its predecessor was killed gets messages at once
// instead of after the dead client's PinnedTTL. A live writer loses the pin
// too and becomes a standby; raceCheck covers the moment of the change.
func (p *Pipeline) takeOver(ctx context.Context) {
	if p.unpin == nil {
		return
	}
	uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := p.unpin(uctx); err != nil && !errors.Is(err, context.Canceled) {
		p.log.Warn("could not release the consumer's pin; a standby or this process gets it once the previous holder's lapses",
			"pinned_ttl", PinnedTTL.String(), "err", err)
	}
}

// release gives up the pin after the last flush, when this process still
// holds it, so that a standby takes over at once.
func (p *Pipeline) release(ctx context.Context) {
	p.mu.Lock()
	pin := p.lastPin
	p.mu.Unlock()
	if pin == "" || p.info == nil || p.unpin == nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := p.info(rctx)
	if err != nil {
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group == Group && g.PinnedClientID == pin {
			if err := p.unpin(rctx); err != nil {
				p.log.Warn("could not release the consumer's pin", "err", err)
			}
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

// puller pulls the durable consumer of cfg with the pinned-client group.
func puller(nc *nats.Conn, cfg Config) Source {
	return pullSource{pull.New(nc, pull.Config{Stream: cfg.Stream, Consumer: cfg.Consumer, Group: Group,
		MaxMessages: cfg.BatchSize, MaxBytes: cfg.BatchBytes, Expires: PullExpires, Heartbeat: PullHeartbeat})}
}

type pullSource struct{ c *pull.Consumer }

func (s pullSource) Messages() (Iterator, error) {
	it, err := s.c.Messages()
	if err != nil {
		return nil, err
	}
	return pullIter{it}, nil
}

type pullIter struct{ it *pull.Iter }

func (i pullIter) Next() (Msg, error) {
	m, err := i.it.Next()
	if err != nil {
		return nil, err
	}
	return m, nil
}
func (i pullIter) Drain()   { i.it.Drain() }
func (i pullIter) KeepPin() { i.it.KeepPin() }
