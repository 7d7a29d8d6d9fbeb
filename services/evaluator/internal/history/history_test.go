package history_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/history"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// TestRecordAndRetry records a change on a real NATS server and ClickHouse,
// then one whose insert fails: the retry publishes the same event (same
// id, dropped by the stream's duplicate window) and stores the change with
// the first attempt's instant. Levels reads the last levels back.
func TestRecordAndRetry(t *testing.T) {
	ctx := context.Background()
	js := testenv.JetStream(t, testenv.NATS(t))
	db := storage.NewConn(testenv.ClickHouse(t))
	if err := storage.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	h := history.New(storagetest.Audited(t, db, storage.EvaluatorAccess), js)
	if err := h.EnsureStream(ctx, 1); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	assess := func(m string, level int, at time.Time) *maturity.Assessment {
		a := maturity.Evaluate(maturity.DefaultConfig(), maturity.SampleInput(m, level, at))
		return &a
	}
	if err := h.Record(ctx, assess("vic", 3, at), 0); err != nil {
		t.Fatal(err)
	}

	// The insert fails (table gone): published, not stored.
	if err := db.Exec(ctx, storage.DropTable(storage.MaturityChanges)); err != nil {
		t.Fatal(err)
	}
	if err := h.Record(ctx, assess("berga", 2, at), 0); err == nil {
		t.Fatal("recorded without its table")
	}
	for _, s := range storage.Migrations[1].Steps { // the level history table again
		if err := db.Exec(ctx, storage.Query{SQL: s.SQL}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Record(ctx, assess("berga", 2, at.Add(time.Minute)), 0); err != nil {
		t.Fatal(err)
	}

	st, err := js.Stream(ctx, history.AssessmentStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("%d events in the stream (%v); want 2: the retry's copy is dropped", info.State.Msgs, err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, contract.AssessmentSubject("berga"))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		ID   string                   `json:"id"`
		Data contract.MaturityChanged `json:"data"`
	}
	if err := json.Unmarshal(msg.Data, &ev); err != nil || !ev.Data.EvaluatedAt.Equal(at) || ev.Data.To != 2 || len(ev.Data.Failing) == 0 {
		t.Errorf("event %+v, %v", ev, err)
	}
	levels, err := h.Levels(ctx)
	if err != nil || len(levels) != 1 || levels["berga"] != 2 {
		t.Fatalf("levels %v, %v; want berga at 2 (vic's row went with the dropped table)", levels, err)
	}
	var rows []struct {
		At time.Time `ch:"evaluated_at"`
	}
	if err := db.Select(ctx, &rows, storage.Query{SQL: "SELECT evaluated_at FROM maturity_changes"}); err != nil || len(rows) != 1 || !rows[0].At.Equal(at) {
		t.Errorf("stored %+v, %v; want the first attempt's instant", rows, err)
	}
}

// TestStreamReplicas: on a three-node cluster the level-change stream is
// kept by as many servers as STREAM_REPLICAS asks, so losing one node loses
// no announced change.
func TestStreamReplicas(t *testing.T) {
	ctx := context.Background()
	cluster := testenv.NATSCluster(t, 3)
	nc, err := nats.Connect(cluster.URLs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := history.New(nil, js).EnsureStream(ctx, 3); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, history.AssessmentStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Replicas; got != 3 {
		t.Fatalf("replicas %d, want 3", got)
	}
}
