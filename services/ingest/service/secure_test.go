package service_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/config"
	"github.com/assoliment/assoliment/services/platform/natsauth"
	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// TestSecureNATS runs the ingest service as the ingest user of the shipped
// secure configuration, over TLS with a client certificate: its permissions
// are enough to set up the streams and the consumer, store events, dead-letter
// rejects and acknowledge, while providers and the council publish from
// their own accounts; each provider then reads its own dead letters with its
// own credentials.
func TestSecureNATS(t *testing.T) {
	s := natsauthtest.Start(t, true)
	// Whatever the broker takes from a provider fits the main stream, so
	// a stream limit never refuses what the broker acknowledged to MQTT.
	if s.Plan.Limits.Payload != contract.MaxStoredMessage {
		t.Fatalf("the providers' payload limit %d differs from the main stream's largest message %d", s.Plan.Limits.Payload, contract.MaxStoredMessage)
	}
	ch := testenv.ClickHouse(t)
	cfg, err := config.Parse([]string{
		"--nats-url", s.ClientURL(), "--nats-creds", s.Seed(t, "ingest"),
		"--nats-tls-ca", s.Certs.CA, "--nats-tls-cert", s.Certs.ClientCert, "--nats-tls-key", s.Certs.ClientKey,
		"--clickhouse-addr", testenv.ClickHouseAddr(), "--clickhouse-database", ch.Database, "--http-addr", testenv.FreeAddr(t),
		"--flush-interval", "50ms", "--log-level", "warn",
	}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.NATSCA != s.Certs.CA || cfg.TLS.NATSCert == "" || cfg.TLS.ClickHouse {
		t.Fatalf("tls settings %+v", cfg.TLS)
	}
	runService(t, cfg)

	at := time.Now().UTC().Add(-time.Hour)
	council := mustJS(t, s.ConnectAs(t, "council-sabadell"))
	fcc := mustJS(t, s.ConnectAs(t, "provider-fcc-medi-ambient"))
	publishEvent(t, council, event(contract.TypeServiceRegistered, "sabadell", contract.Council, "reg-1", at, &contract.ServiceRegistered{
		Service: "waste", Area: "environment", Delivery: contract.DeliveryConcession, Provider: "fcc-medi-ambient", ReportingIntervalSeconds: 900}))
	publishEvent(t, fcc, event(contract.TypeKPIMeasured, "sabadell", "fcc-medi-ambient", "m-1", at, &contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: 0.97}))
	bad := []byte(`{"specversion":"1.0","id":"m-2"`)
	publish(t, fcc, "smartcity.terrassa.fcc-medi-ambient.measurement", bad)
	// A message just under the main stream's limit is dead-lettered whole,
	// with the headers ingest adds, within the server's max_payload.
	huge := append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), contract.MaxStoredMessage-256)...)
	huge = append(huge, `"}`...)
	publish(t, fcc, "smartcity.terrassa.fcc-medi-ambient.measurement", huge)
	publishEvent(t, fcc, event(contract.TypeKPIMeasured, "sabadell", "fcc-medi-ambient", "m-3", at, &contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: 0.99}))

	// A provider cannot roll the stream up (delete everything before its
	// message) with the Nats-Rollup header: the stream does not allow it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rollup := nats.NewMsg("smartcity.sabadell.fcc-medi-ambient.measurement")
	rollup.Header.Set("Nats-Rollup", "all")
	rollup.Data = []byte(`{}`)
	var apiErr *jetstream.APIError
	if _, err := fcc.PublishMsg(ctx, rollup); err == nil || !errors.As(err, &apiErr) {
		t.Fatalf("a roll-up must be refused by the stream, got %v", err)
	}

	testenv.Eventually(t, "stored events", 20*time.Second, func() bool {
		return count(t, ch, "SELECT count() FROM {db}.catalog") == 1 && count(t, ch, "SELECT count() FROM {db}.measurements") == 2
	})
	op := mustJS(t, s.ConnectAs(t, "operator"))
	dlq, err := op.Stream(ctx, contract.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "dead letter", 20*time.Second, func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 2
	})
	for seq, want := range map[uint64]struct {
		reason contract.Reason
		body   []byte
	}{1: {contract.ReasonMalformedJSON, bad}, 2: {contract.ReasonTooLarge, huge}} {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(contract.HeaderReason) != string(want.reason) || !bytes.Equal(m.Data, want.body) ||
			m.Subject != "deadletter.terrassa.fcc-medi-ambient."+string(want.reason) {
			t.Fatalf("dead letter %d on %s: %v, %d bytes", seq, m.Subject, m.Header, len(m.Data))
		}
	}

	// The provider reads both with its own credentials; the council, whose
	// events were valid, has none.
	opjs, err := jetstream.New(s.ConnectAs(t, "operator"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := natsauth.EnsureDeadLetterStreams(ctx, opjs, s.Plan); err != nil {
		t.Fatal(err)
	}
	for account, want := range map[string]int{"provider-fcc-medi-ambient": 2, "council-sabadell": 0} {
		nc := s.ConnectAs(t, account)
		testenv.Eventually(t, account+" reads its dead letters", 10*time.Second, func() bool {
			d, err := natsauth.OpenDeadLetters(ctx, nc, account, "")
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for m, err := range d.All(ctx, 1) {
				if err != nil {
					t.Fatal(err)
				}
				if m.Header.Get(contract.HeaderReason) == "" {
					t.Fatalf("dead letter without its reason: %v", m.Header)
				}
				n++
			}
			return n == want
		})
	}
	// Everything acknowledged: nothing pending for redelivery.
	testenv.Eventually(t, "acknowledged", 10*time.Second, func() bool {
		c, err := op.Consumer(ctx, contract.Stream, cfg.Consumer)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	})
}
