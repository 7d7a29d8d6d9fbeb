package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/platform/chconn"
)

// AssessmentStream keeps level-change events (subjects assessment.>).
const AssessmentStream = "SMARTCITY_ASSESSMENTS"

// Changes publishes level changes as CloudEvents on
// assessment.<municipality> and stores them in the maturity_changes table.
type Changes struct {
	c  *chconn.Conn
	js jetstream.JetStream
	// pending keeps the instant of a change whose recording failed, so the
	// retry publishes the same event (same id) and the broker drops a copy.
	pending map[string]pendingChange
}

type pendingChange struct {
	from, to int
	at       time.Time
}

// NewChanges returns the history; EnsureStream creates its stream.
func NewChanges(c *chconn.Conn, js jetstream.JetStream) *Changes {
	return &Changes{c: c, js: js, pending: map[string]pendingChange{}}
}

// EnsureStream creates the stream of level-change events when missing.
func (h *Changes) EnsureStream(ctx context.Context) error {
	_, err := h.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: AssessmentStream, Subjects: []string{contract.AssessmentPrefix + ".>"}, Storage: jetstream.FileStorage,
		Duplicates: 10 * time.Minute, Description: "Assoliment maturity level changes",
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", AssessmentStream, err)
	}
	return nil
}

// Levels reads the last recorded level of every municipality.
func (h *Changes) Levels(ctx context.Context) (map[string]int, error) {
	rows, err := h.c.Query(ctx, fmt.Sprintf(
		"SELECT municipality, argMax(to_level, evaluated_at) FROM %s FINAL GROUP BY municipality", h.c.Table("maturity_changes")))
	if err != nil {
		return nil, fmt.Errorf("read level history: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var m string
		var l uint8
		if err := rows.Scan(&m, &l); err != nil {
			return nil, fmt.Errorf("read level history: %w", err)
		}
		out[m] = int(l)
	}
	return out, rows.Err()
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
	// Every criterion that fails at T, whatever its level; the first ones
	// of the list are those that keep the municipality from the next level.
	failing := make([]string, 0, len(a.Criteria))
	for _, c := range a.Missing {
		failing = append(failing, c.ID)
	}
	for _, c := range a.Criteria {
		if !c.Passed && c.Level != a.Level+1 {
			failing = append(failing, c.ID)
		}
	}
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
	batch, err := h.c.PrepareBatch(h.c.InsertContext(ctx), fmt.Sprintf(
		"INSERT INTO %s (municipality, from_level, to_level, evaluated_at, failing, recorded_at)", h.c.Table("maturity_changes")))
	if err != nil {
		return fmt.Errorf("store level change: %w", err)
	}
	if err := batch.Append(a.Municipality, uint8(from), uint8(a.Level), at.UTC().Truncate(time.Second),
		strings.Join(failing, ","), time.Now().UTC().Truncate(time.Second)); err != nil {
		return fmt.Errorf("store level change: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("store level change: %w", err)
	}
	return nil
}
