// Package run publishes the simulator's events to NATS JetStream: the
// backfill, live mode and benchmark load, all through the contract's
// asynchronous publisher.
package run

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/simulator/sim"
)

// StreamConfig is the main stream as the ingest service creates it.
func StreamConfig(name string) jetstream.StreamConfig { return contract.StreamConfig(name) }

// EnsureStream creates the main stream (and the import stream it sources)
// when it does not exist; an existing stream is left as it is.
func EnsureStream(ctx context.Context, js jetstream.JetStream, name string) error {
	for _, sc := range []jetstream.StreamConfig{contract.ImportStreamConfig(), StreamConfig(name)} {
		_, err := js.CreateStream(ctx, sc)
		if err == nil || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			continue
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamNameInUse {
			continue
		}
		return fmt.Errorf("create stream %s: %w", sc.Name, err)
	}
	return nil
}

// Counts are the outcomes of published messages.
type Counts struct {
	Published  int64 `json:"published"`
	Acked      int64 `json:"acked"`
	Duplicates int64 `json:"duplicates"` // acked, but dropped by the broker as a copy
	Failed     int64 `json:"failed"`
}

// counter tallies publisher results; it is safe to read while publishing.
type counter struct {
	published, acked, duplicates, failed atomic.Int64
	log                                  *slog.Logger
}

func (c *counter) result(r contract.Result) {
	switch {
	case r.Err != nil:
		if c.failed.Add(1) <= 10 {
			c.log.Warn("message not acknowledged", "subject", r.Subject, "id", r.ID, "error", r.Err)
		}
	default:
		c.acked.Add(1)
		if r.Ack != nil && r.Ack.Duplicate {
			c.duplicates.Add(1)
		}
	}
}

func (c *counter) counts() Counts {
	return Counts{Published: c.published.Load(), Acked: c.acked.Load(),
		Duplicates: c.duplicates.Load(), Failed: c.failed.Load()}
}

func newPublisher(js jetstream.JetStream, maxInFlight int, log *slog.Logger) (*contract.Publisher, *counter) {
	c := &counter{log: log}
	return contract.NewPublisher(js, contract.WithMaxInFlight(maxInFlight), contract.WithResults(c.result)), c
}

// send publishes one message, counting a refusal to send as a failure.
func send(ctx context.Context, p *contract.Publisher, c *counter, subject, id string, data []byte) error {
	c.published.Add(1)
	if err := p.PublishRaw(ctx, subject, id, data); err != nil {
		if ctx.Err() != nil {
			c.published.Add(-1)
			return ctx.Err()
		}
		if c.failed.Add(1) <= 10 {
			c.log.Warn("message not sent", "subject", subject, "id", id, "error", err)
		}
	}
	return nil
}

// drain waits for every outstanding ack, for up to a minute after ctx ends.
func drain(ctx context.Context, p *contract.Publisher) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_ = p.Wait(wctx) // failures are counted by the results function
}

func publishEvent(ctx context.Context, p *contract.Publisher, c *counter, e *contract.Event) error {
	b, err := contract.Marshal(e)
	if err != nil {
		return err
	}
	return send(ctx, p, c, e.Subject(), e.ID, b)
}

// Backfill publishes the catalogue, then every measurement and incident of
// the history, as fast as the broker acks them with at most maxInFlight
// outstanding, and waits for every ack.
func Backfill(ctx context.Context, js jetstream.JetStream, g *sim.Generator, maxInFlight int, log *slog.Logger) (Counts, error) {
	p, c := newPublisher(js, maxInFlight, log)
	begin := time.Now()
	for _, e := range g.Catalog() {
		if err := publishEvent(ctx, p, c, e); err != nil {
			drain(ctx, p)
			return c.counts(), err
		}
	}
	// The catalogue is acked before any measurement is sent.
	drain(ctx, p)
	if err := ctx.Err(); err != nil {
		return c.counts(), err
	}
	catalog := c.counts().Published
	lastLog := time.Now()
	err := g.Observations(g.HistoryStart(), g.Start(), func(e *contract.Event) error {
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			log.Info("backfill progress", "event_time", e.Time, "published", c.published.Load(), "acked", c.acked.Load())
		}
		return publishEvent(ctx, p, c, e)
	})
	drain(ctx, p)
	n := c.counts()
	log.Info("backfill done", "catalog", catalog, "published", n.Published, "acked", n.Acked,
		"duplicates", n.Duplicates, "failed", n.Failed, "from", g.HistoryStart(), "to", g.Start(),
		"seconds", time.Since(begin).Seconds())
	return n, err
}

// LiveOptions configure Live.
type LiveOptions struct {
	// Speed is how many simulated seconds pass per real second while the
	// simulated clock is behind the real one (1 when zero). The simulated
	// clock never runs ahead of the real clock, so events are never in the
	// future.
	Speed float64
	// Tick is how often events are published (1s when zero).
	Tick time.Duration
	// Now is the real clock (time.Now when nil).
	Now         func() time.Time
	MaxInFlight int
	Log         *slog.Logger
	// Until stops live mode once the simulated clock reaches it (zero:
	// run until ctx ends).
	Until time.Time
}

// Live publishes the events from the generator's start on as the
// simulated clock passes them, until ctx ends. It returns the counts and
// nil when stopped by ctx or Until.
func Live(ctx context.Context, js jetstream.JetStream, g *sim.Generator, o LiveOptions) (Counts, error) {
	if o.Speed < 1 {
		o.Speed = 1
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p, c := newPublisher(js, o.MaxInFlight, o.Log)
	wall0 := o.Now()
	cursor := g.Start()
	tick := time.NewTicker(o.Tick)
	defer tick.Stop()
	lastLog := wall0
	for {
		wall := o.Now()
		simNow := g.Start().Add(time.Duration(float64(wall.Sub(wall0)) * o.Speed))
		if simNow.After(wall) {
			simNow = wall
		}
		if !o.Until.IsZero() && simNow.After(o.Until) {
			simNow = o.Until
		}
		if simNow.After(cursor) {
			err := g.Observations(cursor, simNow, func(e *contract.Event) error { return publishEvent(ctx, p, c, e) })
			if err != nil {
				drain(ctx, p)
				return c.counts(), nilIfDone(ctx, err)
			}
			cursor = simNow
			if err := p.Wait(ctx); err != nil && ctx.Err() != nil {
				return c.counts(), nil
			}
		}
		if wall.Sub(lastLog) >= time.Minute {
			lastLog = wall
			n := c.counts()
			o.Log.Info("live", "simulated_time", cursor, "published", n.Published, "acked", n.Acked, "failed", n.Failed)
		}
		if !o.Until.IsZero() && !cursor.Before(o.Until) {
			return c.counts(), nil
		}
		select {
		case <-ctx.Done():
			drain(ctx, p)
			return c.counts(), nil
		case <-tick.C:
		}
	}
}

func nilIfDone(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil
	}
	return err
}
