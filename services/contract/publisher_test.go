package contract

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func startNATS(t *testing.T) *nats.Conn {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// An acknowledgement that never comes (here a subscriber that swallows the
// message; in production a connection lost or a cluster electing a leader)
// is reported as a failure after the ack timeout, not waited for for ever;
// acknowledged messages are reported with their ack.
func TestPublisherAckTimeout(t *testing.T) {
	nc := startNATS(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"stored.>"}}); err != nil {
		t.Fatal(err)
	}
	swallow, err := nc.Subscribe("swallowed.>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer swallow.Unsubscribe()
	var results []Result
	p := NewPublisher(js, WithAckTimeout(200*time.Millisecond), WithResults(func(r Result) { results = append(results, r) }))
	if err := p.PublishRaw(ctx, "stored.a", "id-1", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishRaw(ctx, "swallowed.a", "id-2", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.Wait(ctx)
	if !errors.Is(err, ErrNotAcked) || time.Since(start) > 10*time.Second {
		t.Fatalf("Wait: %v after %s", err, time.Since(start))
	}
	if len(results) != 2 || results[0].Err != nil || results[0].Ack == nil || !errors.Is(results[1].Err, ErrNotAcked) {
		t.Fatalf("results %+v", results)
	}
}
