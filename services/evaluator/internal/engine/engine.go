// Package engine runs evaluations: periodically for every municipality into
// a snapshot that scrapes and API calls read, and on demand at any instant.
// It announces level changes through a History. Its inputs come from a
// Source; the ClickHouse reader and the NATS history are adapters outside
// it.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
)

// Input is what is read for one municipality at T.
type Input struct {
	maturity.Input
	// Short holds, per SLA and short-window label, counted samples and how
	// many meet the target; absent when no samples.
	Short map[maturity.SLAKey]map[string]maturity.WindowStats
	// Unattributed counts measurements in C not counted because their
	// publisher is neither the service's provider nor the council, or the
	// service is not catalogued at T.
	Unattributed int
}

// Inputs is what is read at T: every known municipality, and what was
// left out.
type Inputs struct {
	Municipalities map[string]*Input
	// UnknownMeasurements counts measurements in C of municipalities that
	// are not known at T (no catalogue event of their council at or
	// before T). Zero when reading one municipality.
	UnknownMeasurements int
}

// Source reads the inputs of every known municipality at T (only of the
// named one when municipality is not empty), for windows of length w.
type Source interface {
	Read(ctx context.Context, at time.Time, w time.Duration, municipality string) (*Inputs, error)
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

// Result is the verdict on one municipality with the extras the metrics
// need.
type Result struct {
	Assessment   maturity.Assessment
	Short        map[maturity.SLAKey]map[string]maturity.WindowStats
	Unattributed int
}

// Snapshot is one complete evaluation of every municipality.
type Snapshot struct {
	At        time.Time // the evaluation instant T
	Completed time.Time // wall time when it completed
	Results   map[string]*Result
	// UnknownMeasurements counts measurements in C of municipalities that
	// are not known.
	UnknownMeasurements int
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

// Engine evaluates.
type Engine struct {
	src    Source
	hist   History
	obs    Observer
	cfg    maturity.Config
	log    *slog.Logger
	now    func() time.Time
	mu     sync.RWMutex
	latest *Snapshot
	levels map[string]int // last recorded level of each municipality; nil until read
}

// New returns an engine; call Run to evaluate periodically. obs may be nil.
func New(src Source, hist History, obs Observer, cfg maturity.Config, log *slog.Logger) *Engine {
	return &Engine{src: src, hist: hist, obs: obs, cfg: cfg, log: log, now: time.Now}
}

// Latest returns the last complete snapshot, nil before the first one.
func (e *Engine) Latest() *Snapshot {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.latest
}

// Evaluate reads and judges every known municipality at T (or one, when
// municipality is not empty). The snapshot it returns is not published.
func (e *Engine) Evaluate(ctx context.Context, at time.Time, municipality string) (*Snapshot, error) {
	ins, err := e.src.Read(ctx, at, e.cfg.Window, municipality)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{At: at, Results: make(map[string]*Result, len(ins.Municipalities)), UnknownMeasurements: ins.UnknownMeasurements}
	for m, in := range ins.Municipalities {
		s.Results[m] = &Result{Assessment: maturity.Evaluate(e.cfg, in.Input), Short: in.Short, Unattributed: in.Unattributed}
	}
	return s, nil
}

// EvaluateOne evaluates one municipality at T; found is false when it is
// not known at T.
func (e *Engine) EvaluateOne(ctx context.Context, at time.Time, municipality string) (*maturity.Assessment, bool, error) {
	s, err := e.Evaluate(ctx, at, municipality)
	if err != nil {
		return nil, false, err
	}
	r, ok := s.Results[municipality]
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
	snap, err := e.Evaluate(ctx, at, "")
	d := e.now().Sub(start)
	if e.obs != nil {
		e.obs.Evaluated(d, err)
	}
	if err != nil {
		return fmt.Errorf("evaluation at %s: %w", at.Format(time.RFC3339), err)
	}
	snap.Completed = e.now()
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
