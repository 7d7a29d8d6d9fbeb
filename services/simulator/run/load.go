package run

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/simulator/sim"
)

// LoadOptions configure Load.
type LoadOptions struct {
	sim.LoadOptions
	Rate        float64       // messages per second; 0 = as fast as possible
	Count       int64         // messages after the catalogue; 0 = no limit
	Duration    time.Duration // 0 = no limit
	MaxInFlight int
	Log         *slog.Logger
}

// LoadReport is the final report of a load run, printed as one JSON line.
type LoadReport struct {
	Counts
	Catalog         int64            `json:"catalog"`
	InvalidSent     int64            `json:"invalid_sent"`
	InvalidByReason map[string]int64 `json:"invalid_by_reason"`
	ElapsedSeconds  float64          `json:"elapsed_seconds"`
	AckedPerSecond  float64          `json:"acked_per_second"`
}

// Load publishes the load municipalities' catalogue, then load messages at
// the given rate until Count messages were sent, Duration passed or ctx
// ended, and waits for the acks. Published counts the catalogue too.
func Load(ctx context.Context, js jetstream.JetStream, o LoadOptions) (LoadReport, error) {
	l, err := sim.NewLoad(o.LoadOptions)
	if err != nil {
		return LoadReport{}, err
	}
	p, c := newPublisher(js, o.MaxInFlight, o.Log)
	rep := LoadReport{InvalidByReason: map[string]int64{}}
	begin := time.Now()
	for _, m := range l.Catalog(begin) {
		if err := send(ctx, p, c, m.Subject, m.ID, m.Data); err != nil {
			break
		}
		rep.Catalog++
	}
	drain(ctx, p)
	t0 := time.Now()
	for i := int64(0); o.Count == 0 || i < o.Count; i++ {
		now := time.Now()
		if o.Duration > 0 && now.Sub(t0) >= o.Duration {
			break
		}
		if o.Rate > 0 {
			due := t0.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))
			if wait := due.Sub(now); wait > time.Millisecond {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		m := l.Message(i, time.Now())
		if err := send(ctx, p, c, m.Subject, m.ID, m.Data); err != nil {
			break
		}
		if m.Invalid != "" {
			rep.InvalidSent++
			rep.InvalidByReason[string(m.Invalid)]++
		}
	}
	drain(ctx, p)
	rep.Counts = c.counts()
	rep.ElapsedSeconds = time.Since(t0).Seconds()
	if rep.ElapsedSeconds > 0 {
		rep.AckedPerSecond = float64(rep.Acked-rep.Catalog) / rep.ElapsedSeconds
	}
	return rep, nil
}
