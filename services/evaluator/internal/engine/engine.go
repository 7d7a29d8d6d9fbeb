// Package engine runs evaluations: periodically for every municipality into
// a snapshot that scrapes and API calls read, and on demand at any instant.
// It announces level changes and records them in the level history.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/evaluator/internal/reader"
)

// Result is the verdict on one municipality with the extras the metrics
// need.
type Result struct {
	Assessment   maturity.Assessment
	Short        map[reader.SLAKey]map[string]maturity.WindowStats
	Unattributed int
}

// Snapshot is one complete evaluation of every municipality.
type Snapshot struct {
	At        time.Time // the evaluation instant T
	Completed time.Time // wall time when it completed
	Results   map[string]*Result
}

// Names returns the municipalities in order.
func (s *Snapshot) Names() []string {
	out := make([]string, 0, len(s.Results))
	for m := range s.Results {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Source reads inputs; reader.Reader is the real one.
type Source interface {
	Read(ctx context.Context, at time.Time, w time.Duration, municipality string) (map[string]*reader.Municipality, error)
}

// History keeps levels and announces changes.
type History interface {
	// Levels returns the last recorded level of every municipality.
	Levels(ctx context.Context) (map[string]int, error)
	// Record announces and stores one change.
	Record(ctx context.Context, a *maturity.Assessment, from int) error
}

// Observer is told about each periodic evaluation (metrics).
type Observer interface {
	Evaluated(d time.Duration, err error)
}

// Engine evaluates.
type Engine struct {
	src     Source
	hist    History
	obs     Observer
	cfg     maturity.Config
	log     *slog.Logger
	now     func() time.Time
	mu      sync.RWMutex
	latest  *Snapshot
	levels  map[string]int
	histErr bool
}

// New returns an engine; call Run to evaluate periodically.
func New(src Source, hist History, obs Observer, cfg maturity.Config, log *slog.Logger) *Engine {
	return &Engine{src: src, hist: hist, obs: obs, cfg: cfg, log: log, now: time.Now}
}

// Latest returns the last complete snapshot, nil before the first one.
func (e *Engine) Latest() *Snapshot {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.latest
}

// Evaluate computes the inputs and verdicts of every municipality at T (or
// of one, when municipality is not empty).
func (e *Engine) Evaluate(ctx context.Context, at time.Time, municipality string) (map[string]*Result, error) {
	ins, err := e.src.Read(ctx, at, e.cfg.Window, municipality)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Result, len(ins))
	for m, in := range ins {
		out[m] = &Result{Assessment: maturity.Evaluate(e.cfg, in.Input), Short: in.Short, Unattributed: in.Unattributed}
	}
	return out, nil
}

// EvaluateOne evaluates one municipality at T; found is false when nothing
// is known of it.
func (e *Engine) EvaluateOne(ctx context.Context, at time.Time, municipality string) (*maturity.Assessment, bool, error) {
	res, err := e.Evaluate(ctx, at, municipality)
	if err != nil {
		return nil, false, err
	}
	r, ok := res[municipality]
	if !ok {
		return nil, false, nil
	}
	return &r.Assessment, true, nil
}

// Tick runs one periodic evaluation at the current time, publishes the
// snapshot and announces level changes.
func (e *Engine) Tick(ctx context.Context) error {
	start := e.now()
	at := start.UTC()
	res, err := e.Evaluate(ctx, at, "")
	d := e.now().Sub(start)
	if e.obs != nil {
		e.obs.Evaluated(d, err)
	}
	if err != nil {
		return fmt.Errorf("evaluation at %s: %w", at.Format(time.RFC3339), err)
	}
	snap := &Snapshot{At: at, Completed: e.now(), Results: res}
	e.mu.Lock()
	e.latest = snap
	e.mu.Unlock()
	e.announce(ctx, snap)
	return nil
}

// announce records every level that differs from the last recorded one. A
// municipality with no history starts from level 0.
func (e *Engine) announce(ctx context.Context, snap *Snapshot) {
	if e.levels == nil {
		lv, err := e.hist.Levels(ctx)
		if err != nil {
			e.log.Error("read level history; changes will be announced later", "err", err)
			return
		}
		e.levels = lv
	}
	for _, m := range snap.Names() {
		a := &snap.Results[m].Assessment
		from := e.levels[m]
		if a.Level == from {
			continue
		}
		if err := e.hist.Record(ctx, a, from); err != nil {
			e.log.Error("announce level change; retried next evaluation", "municipality", m, "from", from, "to", a.Level, "err", err)
			continue
		}
		e.log.Info("level changed", "municipality", m, "from", from, "to", a.Level, "level", a.LevelName)
		e.levels[m] = a.Level
	}
}

// Run evaluates every interval until ctx ends.
func (e *Engine) Run(ctx context.Context, interval time.Duration) {
	for {
		if err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("evaluation failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
