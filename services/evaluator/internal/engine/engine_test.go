package engine_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
)

var at = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// source reads municipalities built for the levels in levels; err, when
// set, fails the read.
type source struct {
	mu     sync.Mutex
	levels map[string]int
	err    error
	reads  int
}

func (s *source) Read(_ context.Context, at time.Time, _ time.Duration, municipality string) (*engine.Inputs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.err != nil {
		return nil, s.err
	}
	out := &engine.Inputs{Municipalities: map[string]*engine.Input{}, UnknownMeasurements: 7}
	for m, l := range s.levels {
		if municipality == "" || municipality == m {
			out.Municipalities[m] = &engine.Input{Input: maturity.SampleInput(m, l, at), Unattributed: l}
		}
	}
	return out, nil
}

func (s *source) set(levels map[string]int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.levels, s.err = levels, err
}

// history records changes in memory, like the table it stands for;
// levelsErr and recordErr make it fail.
type history struct {
	recorded  map[string]int
	changes   []string
	levelsErr error
	recordErr error
}

func (h *history) Levels(context.Context) (map[string]int, error) {
	if h.levelsErr != nil {
		return nil, h.levelsErr
	}
	out := map[string]int{}
	for m, l := range h.recorded {
		out[m] = l
	}
	return out, nil
}

func (h *history) Record(_ context.Context, a *maturity.Assessment, from int) error {
	if h.recordErr != nil {
		return h.recordErr
	}
	h.recorded[a.Municipality] = a.Level
	h.changes = append(h.changes, a.Municipality+":"+maturity.LevelName(from)+">"+a.LevelName)
	return nil
}

type observer struct{ ok, failed int }

func (o *observer) Evaluated(_ time.Duration, err error) {
	if err != nil {
		o.failed++
	} else {
		o.ok++
	}
}

func newEngine(src engine.Source, h engine.History, obs engine.Observer) *engine.Engine {
	return engine.New(src, h, obs, maturity.DefaultConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestTickAnnouncesChangesOnce(t *testing.T) {
	ctx := context.Background()
	src := &source{levels: map[string]int{"vic": 3, "berga": 0}}
	h := &history{recorded: map[string]int{}}
	obs := &observer{}
	e := newEngine(src, h, obs)
	if e.Latest() != nil {
		t.Fatal("a snapshot before the first evaluation")
	}
	for range 3 {
		if err := e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s := e.Latest()
	if s == nil || len(s.Results) != 2 || s.Results["vic"].Assessment.Level != 3 || s.Results["vic"].Unattributed != 3 ||
		s.UnknownMeasurements != 7 || s.Completed.IsZero() {
		t.Fatalf("snapshot %+v", s)
	}
	if len(h.changes) != 1 || h.changes[0] != "vic:sense_dades>estrategia" {
		t.Errorf("changes %v; want vic from 0 to 3 once (berga stays at 0: nothing to announce)", h.changes)
	}
	src.set(map[string]int{"vic": 5, "berga": 1}, nil)
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.changes) != 3 || h.changes[1] != "berga:sense_dades>puntual" || h.changes[2] != "vic:estrategia>optimitzat" {
		t.Errorf("changes %v", h.changes)
	}
	if obs.ok != 4 || obs.failed != 0 {
		t.Errorf("observed %+v", obs)
	}

	// A restart reads the recorded levels: nothing is announced again.
	again := newEngine(src, h, nil)
	if err := again.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.changes) != 3 {
		t.Errorf("after a restart: changes %v", h.changes)
	}
}

func TestFailuresKeepTheSnapshotAndRetry(t *testing.T) {
	ctx := context.Background()
	src := &source{levels: map[string]int{"vic": 2}}
	h := &history{recorded: map[string]int{}, levelsErr: errors.New("clickhouse down")}
	obs := &observer{}
	e := newEngine(src, h, obs)
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.changes) != 0 {
		t.Fatalf("announced without knowing the last levels: %v", h.changes)
	}
	first := e.Latest()

	// The source fails: the error is counted, the snapshot stays.
	src.set(map[string]int{"vic": 4}, errors.New("clickhouse down"))
	if err := e.Tick(ctx); err == nil {
		t.Fatal("no error")
	}
	if e.Latest() != first || obs.failed != 1 {
		t.Errorf("after a failed evaluation: snapshot replaced (%v) or not observed (%+v)", e.Latest() != first, obs)
	}

	// The history answers but recording fails: retried at the next tick.
	src.set(map[string]int{"vic": 4}, nil)
	h.levelsErr, h.recordErr = nil, errors.New("nats down")
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	h.recordErr = nil
	if err := e.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if len(h.changes) != 1 || h.changes[0] != "vic:sense_dades>gestionat" {
		t.Errorf("changes %v; want the change recorded once, on the retry", h.changes)
	}
}

func TestEvaluateOne(t *testing.T) {
	src := &source{levels: map[string]int{"vic": 4, "berga": 1}}
	e := newEngine(src, &history{recorded: map[string]int{}}, nil)
	a, ok, err := e.EvaluateOne(context.Background(), at, "vic")
	if err != nil || !ok || a.Level != 4 || a.Municipality != "vic" || !a.At.Equal(at) {
		t.Fatalf("%+v %v %v", a, ok, err)
	}
	if _, ok, err := e.EvaluateOne(context.Background(), at, "nowhere"); ok || err != nil {
		t.Errorf("unknown municipality: found %v, %v", ok, err)
	}
	src.set(nil, errors.New("down"))
	if _, _, err := e.EvaluateOne(context.Background(), at, "vic"); err == nil {
		t.Error("no error")
	}
	if e.Latest() != nil {
		t.Error("on-demand evaluations must not publish a snapshot")
	}
}

// TestRunStopsWithItsContext: Run evaluates at once and then every
// interval, and returns when its context ends.
func TestRunStopsWithItsContext(t *testing.T) {
	src := &source{levels: map[string]int{"vic": 1}}
	e := newEngine(src, &history{recorded: map[string]int{}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx, time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		src.mu.Lock()
		n := src.reads
		src.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run does not evaluate repeatedly")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}
