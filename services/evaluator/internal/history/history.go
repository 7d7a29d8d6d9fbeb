// Package history is the evaluator's level history: it announces level
// changes as CloudEvents on NATS (assessment.<municipality>) and records
// them in ClickHouse (maturity_changes), where it reads the last levels
// back after a restart. It is the engine's History.
package history

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/storage"
)

// AssessmentStream keeps level-change events (subjects assessment.>).
const AssessmentStream = "SMARTCITY_ASSESSMENTS"

// Changes publishes level changes and stores them.
type Changes struct {
	db  storage.Engine
	js  jetstream.JetStream
	now func() time.Time
	// pending keeps the instant of a change whose recording failed, so the
	// retry publishes the same event (same id) and the broker drops a copy.
	pending map[string]pendingChange
}

type pendingChange struct {
	from, to int
	at       time.Time
}

// New returns the history; EnsureStream creates its stream.
func New(db storage.Engine, js jetstream.JetStream) *Changes {
	return &Changes{db: db, js: js, now: time.Now, pending: map[string]pendingChange{}}
}

// EnsureStream creates the stream of level-change events, or updates it to
// this configuration, kept by replicas servers of a NATS cluster.
func (h *Changes) EnsureStream(ctx context.Context, replicas int) error {
	_, err := h.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: AssessmentStream, Subjects: []string{contract.AssessmentPrefix + ".>"}, Storage: jetstream.FileStorage,
		Duplicates: 10 * time.Minute, Description: "Assoliment maturity level changes", Replicas: replicas,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", AssessmentStream, err)
	}
	return nil
}

// Levels reads the last recorded level of every municipality.
func (h *Changes) Levels(ctx context.Context) (map[string]int, error) {
	var rows []storage.LastLevel
	if err := h.db.Select(ctx, &rows, storage.LastLevels()); err != nil {
		return nil, fmt.Errorf("read level history: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Municipality] = int(r.Level)
	}
	return out, nil
}

// Failing lists every criterion that fails at T, whatever its level; the
// first ones are those that keep the municipality from the next level.
func Failing(a *maturity.Assessment) []string {
	failing := make([]string, 0, len(a.Criteria))
	for _, c := range a.Missing {
		failing = append(failing, c.ID)
	}
	for _, c := range a.Criteria {
		if !c.Passed && c.Level != a.Level+1 {
			failing = append(failing, c.ID)
		}
	}
	return failing
}

// Record publishes the change (waiting for the broker's ack), then stores it.
// A retry of a change that failed keeps the first attempt's instant and so
// the same event id, which the stream's duplicate window drops.
func (h *Changes) Record(ctx context.Context, a *maturity.Assessment, from int) (err error) {
	at := a.At
	if p, ok := h.pending[a.Municipality]; ok && p.from == from && p.to == a.Level {
		at = p.at
	}
	defer func() {
		if err != nil {
			h.pending[a.Municipality] = pendingChange{from: from, to: a.Level, at: at}
		} else {
			delete(h.pending, a.Municipality)
		}
	}()
	failing := Failing(a)
	id := fmt.Sprintf("maturity-%s-%d-%d-%d", a.Municipality, from, a.Level, at.UnixMilli())
	ev := &contract.Event{
		ID: id, Source: "urn:smartcity:evaluator", Type: contract.TypeMaturityChanged, Time: at,
		Municipality: a.Municipality, Publisher: "evaluator", DataContentType: "application/json",
		Data: &contract.MaturityChanged{Municipality: a.Municipality, From: from, To: a.Level,
			FromName: maturity.LevelName(from), ToName: a.LevelName, EvaluatedAt: at, Failing: failing},
	}
	b, err := contract.Marshal(ev)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: contract.AssessmentSubject(a.Municipality), Data: b, Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, id)
	msg.Header.Set("Content-Type", "application/cloudevents+json")
	if _, err := h.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish level change: %w", err)
	}
	row := storage.MaturityChangeRow(a.Municipality, from, a.Level, at, failing, h.now())
	if err := h.db.Insert(ctx, storage.MaturityChanges, storage.MaturityChangeColumns, [][]any{row}); err != nil {
		return fmt.Errorf("store level change: %w", err)
	}
	return nil
}
