package service_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	evalconfig "github.com/assoliment/assoliment/services/evaluator/config"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	evaluator "github.com/assoliment/assoliment/services/evaluator/service"
	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// TestSecureNATS runs ingest and the evaluator as their users of the shipped
// secure configuration, over TLS: the evaluator's permissions are enough to
// create its stream and announce a level change.
func TestSecureNATS(t *testing.T) {
	s := natsauthtest.Start(t, false)
	ch := testenv.ClickHouse(t)
	at := time.Now().UTC().Truncate(time.Second)
	args := func(user string, more ...string) []string {
		return append([]string{"--nats-url", s.ClientURL(), "--nats-creds", s.Seed(t, user), "--nats-tls-ca", s.Certs.CA,
			"--clickhouse-addr", testenv.ClickHouseAddr(), "--clickhouse-database", ch.Database, "--http-addr", testenv.FreeAddr(t),
			"--log-level", "warn"}, more...)
	}

	startIngest(t, args("ingest", "--flush-interval", "50ms")...)

	// The operator publishes a municipality built for level 2 on behalf of
	// its council and providers (their own users are tested in natsauth).
	js, err := jetstream.New(s.ConnectAs(t, "operator"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	testenv.Eventually(t, "stream", 20*time.Second, func() bool { _, err := js.Stream(ctx, contract.Stream); return err == nil })
	evs, _ := eventsFor(maturity.SampleInput("sabadell", 2, at))
	pub := contract.NewPublisher(js)
	for _, ev := range evs {
		if err := pub.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "events stored", 30*time.Second, func() bool {
		var n uint64
		q := "SELECT (SELECT count() FROM `" + ch.Database + "`.measurements) + (SELECT count() FROM `" + ch.Database + "`.catalog) + (SELECT count() FROM `" + ch.Database + "`.incidents)"
		_ = ch.QueryRow(ctx, q).Scan(&n)
		return n == uint64(len(evs))
	})

	ecfg, err := evalconfig.Parse(args("evaluator", "--evaluation-interval", "1s"), nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "evaluator", func(ctx context.Context) error { return evaluator.Run(ctx, ecfg, io.Discard) })
	testenv.Eventually(t, "level change announced", 30*time.Second, func() bool {
		st, err := js.Stream(ctx, "SMARTCITY_ASSESSMENTS")
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		return err == nil && info.State.Msgs == 1
	})
	var got struct {
		Level int `json:"level"`
	}
	if code := getJSON(t, "http://"+ecfg.HTTPAddr+"/api/v1/municipalities/sabadell/assessment", &got); code != 200 || got.Level != 2 {
		t.Fatalf("assessment %d, level %d", code, got.Level)
	}
}
