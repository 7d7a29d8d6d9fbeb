package natsauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
)

// TestSecureCluster runs the shipped secure cluster configuration as three
// nodes with routes over TLS: a stream with three replicas created by the
// operator stores what a provider publishes through its account, and keeps
// doing so with the stream's leader stopped.
func TestSecureCluster(t *testing.T) {
	c := natsauthtest.StartCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	op, err := jetstream.New(c.ConnectAs(t, "operator", nats.MaxReconnects(-1)))
	if err != nil {
		t.Fatal(err)
	}
	var stream jetstream.Stream
	for {
		stream, err = op.CreateStream(ctx, jetstream.StreamConfig{Name: "SMARTCITY", Subjects: []string{"smartcity.>"}, Replicas: 3})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("create a stream with three replicas: %v", err)
		}
		time.Sleep(500 * time.Millisecond) // the cluster may still be settling
	}
	provider, err := jetstream.New(c.ConnectAs(t, "provider-fcc-medi-ambient", nats.MaxReconnects(-1)))
	if err != nil {
		t.Fatal(err)
	}
	publish := func(id string) {
		t.Helper()
		for {
			pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
			ack, err := provider.Publish(pctx, "smartcity.sabadell.fcc-medi-ambient.measurement", []byte(id))
			pcancel()
			if err == nil && ack.Stream == "SMARTCITY" {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %s as the provider: %v", id, err)
			}
			time.Sleep(200 * time.Millisecond) // a new stream leader is being elected
		}
	}
	publish("before")
	info, err := stream.Info(ctx)
	if err != nil || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream not replicated on three nodes: %+v %v", info, err)
	}
	// Stop a node other than the stream's leader's is not enough of a
	// test: stop the leader, and wait for the others to elect a new one.
	for _, n := range c.Nodes {
		if n.Name() == info.Cluster.Leader {
			n.Shutdown()
		}
	}
	// A request sent while the client reconnects gets no answer: each
	// attempt has its own deadline.
	for {
		ictx, icancel := context.WithTimeout(ctx, 3*time.Second)
		info, err = stream.Info(ictx)
		icancel()
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no new stream leader after the old one stopped: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	publish("after")
	info, err = stream.Info(ctx)
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream after a node stopped: %+v %v", info, err)
	}
}
