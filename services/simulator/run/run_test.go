package run

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/simulator/sim"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startJS runs an embedded JetStream server and returns a JetStream context
// with the main stream created.
func startJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	js := testenv.JetStream(t, testenv.NATS(t))
	ctx := context.Background()
	if err := EnsureStream(ctx, js, contract.Stream); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStream(ctx, js, contract.Stream); err != nil {
		t.Fatalf("second EnsureStream: %v", err)
	}
	return js
}

func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), contract.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// allMsgs reads every message of the main stream without consuming it.
func allMsgs(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, contract.Stream)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(contract.StreamSubjects))
		if err != nil {
			break
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
	return out
}

func smallGenerator(t *testing.T, start time.Time) *sim.Generator {
	t.Helper()
	var munis []sim.Municipality
	for _, m := range sim.Designed() {
		if m.ID == "olot" || m.ID == "reus" {
			munis = append(munis, m)
		}
	}
	g, err := sim.New(sim.Options{Seed: 1, Start: start, Backfill: 2 * sim.Day, Municipalities: munis})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestBackfillIsAckedAndDeduplicated(t *testing.T) {
	js := startJS(t)
	ctx := context.Background()
	g := smallGenerator(t, time.Now().Truncate(time.Second))
	hist := g.History()
	n, err := Backfill(ctx, js, g, 64, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if n.Published != int64(len(hist)) || n.Acked != n.Published || n.Failed != 0 || n.Duplicates != 0 {
		t.Fatalf("counts %+v for %d events", n, len(hist))
	}
	if got := streamMsgs(t, js); got != uint64(len(hist)) {
		t.Fatalf("stream holds %d messages, want %d", got, len(hist))
	}
	msgs := allMsgs(t, js)
	for i, m := range msgs {
		want, _ := contract.Marshal(hist[i])
		if string(m.Data) != string(want) || m.Subject != hist[i].Subject() || m.Header.Get(nats.MsgIdHdr) != hist[i].ID {
			t.Fatalf("message %d differs from event %s", i, hist[i].ID)
		}
	}
	// The same backfill again is kept by the broker (its duplicate window is
	// off; the ingest service deduplicates by identity).
	n, err = Backfill(ctx, js, smallGenerator(t, g.Start()), 64, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if n.Acked != int64(len(hist)) || n.Failed != 0 {
		t.Fatalf("re-run counts %+v, want all %d acked", n, len(hist))
	}
	if got := streamMsgs(t, js); got != 2*uint64(len(hist)) {
		t.Fatalf("after re-run the stream holds %d messages, want %d", got, 2*len(hist))
	}
}

func TestLoadSendsTheInvalidShare(t *testing.T) {
	js := startJS(t)
	rep, err := Load(context.Background(), js, LoadOptions{
		LoadOptions: sim.LoadOptions{Seed: 1, Municipalities: 3, InvalidShare: 0.05, RunID: "test"},
		Count:       1200, MaxInFlight: 256, Log: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Published != rep.Catalog+1200 || rep.Acked != rep.Published || rep.Failed != 0 || rep.InvalidSent != 60 {
		t.Fatalf("report %+v", rep)
	}
	for _, r := range contract.Reasons {
		if rep.InvalidByReason[string(r)] != 5 {
			t.Errorf("%s: %d sent, want 5", r, rep.InvalidByReason[string(r)])
		}
	}
	// Judge what landed in the stream with the contract itself.
	now := time.Now()
	got := map[contract.Reason]int64{}
	msgs := allMsgs(t, js)
	if int64(len(msgs)) != rep.Published {
		t.Fatalf("stream holds %d messages, want %d", len(msgs), rep.Published)
	}
	for _, m := range msgs {
		if _, rej := contract.Decode(m.Subject, m.Data, contract.Rules{Now: now}); rej != nil {
			got[rej.Reason]++
		}
	}
	for _, r := range contract.Reasons {
		if got[r] != 5 {
			t.Errorf("stream: %d messages rejected for %s, want 5", got[r], r)
		}
	}
}

func TestLoadRateAndDuration(t *testing.T) {
	js := startJS(t)
	rep, err := Load(context.Background(), js, LoadOptions{
		LoadOptions: sim.LoadOptions{Seed: 2, Municipalities: 2, RunID: "rate"},
		Rate:        200, Duration: 500 * time.Millisecond, MaxInFlight: 64, Log: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := rep.Published - rep.Catalog
	if sent < 20 || sent > 110 || rep.Failed != 0 || rep.InvalidSent != 0 {
		t.Fatalf("200/s for 0.5s sent %d messages: %+v", sent, rep)
	}
}

// TestLiveCatchesUp: with a start an hour in the past and a high speed, live
// mode publishes that hour compressed, exactly the generator's events.
func TestLiveCatchesUp(t *testing.T) {
	js := startJS(t)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	g := smallGenerator(t, start)
	want := 0
	until := start.Add(50 * time.Minute)
	_ = g.Observations(start, until, func(*contract.Event) error { want++; return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Live(ctx, js, g, LiveOptions{Speed: 3600, Tick: 20 * time.Millisecond, MaxInFlight: 64, Log: quiet, Until: until})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("live mode did not reach Until in time")
	}
	if want == 0 || n.Published != int64(want) || n.Acked != n.Published {
		t.Fatalf("live counts %+v, want %d", n, want)
	}
}

func TestEnsureStreamKeepsAnExistingStream(t *testing.T) {
	js := startJS(t)
	ctx := context.Background()
	cfg := StreamConfig("OTHER")
	cfg.Subjects = []string{"other.>"}
	cfg.Sources = nil
	cfg.Duplicates = time.Minute
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStream(ctx, js, "OTHER"); err != nil {
		t.Fatalf("existing stream with other settings: %v", err)
	}
}
