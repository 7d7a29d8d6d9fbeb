package service_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/assoliment/assoliment/services/contract"
	platformproc "github.com/assoliment/assoliment/services/platform/proc"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// TestFaultPoisonMessage proves the promise of docs/reliability.md: a
// hostile message delays other publishers' events by at most one batch
// interval plus one retry back-off. Two messages whose headers JetStream
// cannot carry into a dead letter whole are followed by 1,000 valid events
// of other publishers; all are stored within 10 s of the first publish, and
// the poison is dead-lettered with what was left out recorded.
func TestFaultPoisonMessage(t *testing.T) {
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	ingestIn(t, ns.ClientURL(), testenv.ClickHouseAddr(), ch, os.Stderr)
	ctx := context.Background()
	now := time.Now().UTC()
	publishEvent(t, js, event(contract.TypeKPIMeasured, "olot", "council", "warm-up", now.Add(-time.Minute),
		&contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: 1})) // waits for the streams
	testenv.Eventually(t, "warm-up stored", 10*time.Second, func() bool {
		return count(t, ch, "SELECT count() FROM {db}.measurements") == 1
	})

	poison := []nats.Header{{"Nats-A": slices.Repeat([]string{"x"}, 5000)}, {"X-Big": {strings.Repeat("y", 65300)}}}
	start := time.Now()
	for i, h := range poison {
		m := &nats.Msg{Subject: "smartcity.olot.evil.measurement", Header: h, Data: []byte(fmt.Sprintf(`{"poison":%d}`, i))}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatalf("poison %d: %v", i, err)
		}
	}
	pub := contract.NewPublisher(js)
	for i := range 1000 {
		publisher := []string{"fcc", "aigues", "council"}[i%3]
		ev := event(contract.TypeKPIMeasured, "sabadell", publisher, fmt.Sprintf("after-%d", i), now.Add(-time.Minute),
			&contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: float64(i)})
		if err := pub.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "1,000 events after the poison stored", time.Until(start.Add(10*time.Second)), func() bool {
		return count(t, ch, "SELECT count() FROM {db}.measurements WHERE municipality = 'sabadell'") == 1000
	})
	t.Logf("1,000 events behind the poison stored %s after the first poison publish", time.Since(start).Round(time.Millisecond))

	dlq, err := js.Stream(ctx, contract.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "two dead letters", 10*time.Second, func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == 2
	})
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != "deadletter.olot.evil.not_cloudevent" || m.Header.Get(contract.HeaderDropped) == "" ||
			!bytes.HasPrefix(m.Data, []byte(`{"poison":`)) {
			t.Errorf("dead letter %d: %s, dropped %q, body %q", seq, m.Subject, m.Header.Get(contract.HeaderDropped), m.Data)
		}
	}
}

// TestFaultLargeBacklog drains a backlog of 2,000 messages of 60 KiB and
// one of 100,000 small ones with a real ingest process: everything is
// stored, the process's peak resident memory stays within 256 MiB, and the
// client is never disconnected as a slow consumer.
func TestFaultLargeBacklog(t *testing.T) {
	bin := buildIngest(t)
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	createStream(t, js)
	ctx := context.Background()
	now := time.Now().UTC()
	pub := contract.NewPublisher(js, contract.WithMaxInFlight(4096))
	pad := strings.Repeat("p", 60<<10)
	for i := range 2000 {
		b := []byte(fmt.Sprintf(`{"specversion":"1.0","id":"big-%d","source":"urn:test","type":"cat.smartcity.kpi.measured.v1",`+
			`"time":%q,"municipality":"olot","publisher":"fcc","pad":%q,"data":{"service":"waste","kpi":"on-time","value":%d}}`,
			i, now.Add(-time.Hour).Format(time.RFC3339Nano), pad, i))
		if err := pub.PublishRaw(ctx, "smartcity.olot.fcc.measurement", fmt.Sprintf("big-%d", i), b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100000 {
		ev := event(contract.TypeKPIMeasured, "vic", "fcc", fmt.Sprintf("small-%d", i), now.Add(-time.Hour),
			&contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: float64(i)})
		if err := pub.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	var stderr syncBuffer
	cmd := exec.Command(bin, "--nats-url", ns.ClientURL(), "--clickhouse-addr", testenv.ClickHouseAddr(),
		"--clickhouse-database", ch.Database, "--http-addr", testenv.FreeAddr(t), "--log-level", "info")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = platformproc.Stop(cmd)
		}
	})
	testenv.Eventually(t, "backlog drained", 3*time.Minute, func() bool {
		var n uint64 // the table exists once the ingest has started
		err := ch.QueryRow(ctx, "SELECT count() FROM "+ch.Table("measurements")).Scan(&n)
		return err == nil && n == 102000
	})
	drained := time.Since(start)
	peak := platformproc.Memory(cmd.Process.Pid, "VmHWM")
	stopped = true
	if err := platformproc.Stop(cmd); err != nil {
		t.Errorf("ingest: %v", err)
	}
	t.Logf("drained 2,000 x 60 KiB + 100,000 small messages in %s; ingest peak RSS %.0f MiB", drained.Round(time.Millisecond), peak)
	if peak > 256 {
		t.Errorf("ingest peak RSS %.0f MiB, want at most 256 MiB", peak)
	}
	if log := stderr.String(); strings.Contains(strings.ToLower(log), "slow consumer") {
		t.Errorf("slow-consumer errors while draining:\n%s", tail(log))
	}
	cons, err := js.Consumer(ctx, contract.Stream, "ingest")
	if err != nil {
		t.Fatal(err)
	}
	// The last acknowledgements reach the broker a moment after the rows.
	testenv.Eventually(t, "every message acknowledged", 10*time.Second, func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.NumAckPending == 0 && ci.NumPending == 0
	})
}
