package service_test

import (
	"context"
	"testing"
	"time"

	natsjs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// TestCloudEventsSDKPublisher publishes with the official CloudEvents Go
// SDK's NATS JetStream binding used with its defaults (binary content mode)
// and in structured mode: the events are stored as any other; an invalid
// one is dead-lettered whole with its ce- headers and a reason.
func TestCloudEventsSDKPublisher(t *testing.T) {
	e := start(t)
	now := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	publishEvent(t, e.js, event(contract.TypeKPIMeasured, "olot", "fcc", "warm-up", now,
		&contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: 1})) // waits for the streams

	send := func(ctx context.Context, subject string, ev cloudevents.Event) {
		t.Helper()
		sender, err := natsjs.NewSenderFromConn(e.nc, contract.Stream, subject, nil)
		if err != nil {
			t.Fatal(err)
		}
		client, err := cloudevents.NewClient(sender)
		if err != nil {
			t.Fatal(err)
		}
		if res := client.Send(ctx, ev); !cloudevents.IsACK(res) {
			t.Fatalf("send %s: %v", ev.ID(), res)
		}
	}
	mk := func(id string, value any) cloudevents.Event {
		ev := cloudevents.NewEvent()
		ev.SetID(id)
		ev.SetSource("urn:provider:fcc")
		ev.SetType(contract.TypeKPIMeasured)
		ev.SetTime(now)
		ev.SetExtension("municipality", "olot")
		ev.SetExtension("publisher", "fcc")
		if err := ev.SetData(cloudevents.ApplicationJSON, map[string]any{"service": "waste", "kpi": "on-time", "value": value}); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	ctx := context.Background()
	subject := "smartcity.olot.fcc.measurement"
	send(ctx, subject, mk("sdk-binary", 0.75))
	send(binding.WithForceStructured(ctx), subject, mk("sdk-structured", 0.5))
	send(ctx, subject, mk("sdk-invalid", "high"))

	testenv.Eventually(t, "SDK events stored", 10*time.Second, func() bool {
		return count(t, e.ch, "SELECT count() FROM {db}.measurements WHERE id LIKE 'sdk-%'") == 2
	})
	if got := count(t, e.ch, "SELECT count() FROM {db}.measurements WHERE id = 'sdk-binary' AND value = 0.75 AND source = 'urn:provider:fcc'"); got != 1 {
		t.Fatal("the binary-mode event was not stored with its value and source")
	}
	dlq, err := e.js.Stream(ctx, contract.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "invalid SDK event dead-lettered", 10*time.Second, func() bool {
		m, err := dlq.GetLastMsgForSubject(ctx, "deadletter.olot.fcc.invalid_field")
		return err == nil && m.Header.Get("ce-id") == "sdk-invalid" && string(m.Data) == `{"kpi":"on-time","service":"waste","value":"high"}`
	})
}
