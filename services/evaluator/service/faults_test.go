package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	evalconfig "github.com/assoliment/assoliment/services/evaluator/config"
	"github.com/assoliment/assoliment/services/evaluator/internal/history"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	evaluator "github.com/assoliment/assoliment/services/evaluator/service"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// TestFaultEvaluatorRestart runs ingest and evaluator against municipalities
// built for every level, then:
//
//   - restarts the NATS server (same port, same store): both services
//     reconnect on their own, and a municipality published afterwards is
//     stored and its level change announced;
//   - restarts the evaluator: the API lists the same levels and gives the
//     same assessments as before, and no level change is announced or
//     recorded again.
func TestFaultEvaluatorRestart(t *testing.T) {
	dir := t.TempDir()
	port := testenv.FreePort(t)
	ns := testenv.NATSOn(t, dir, port)
	ch := testenv.ClickHouse(t)
	at := time.Now().UTC().Truncate(time.Second)
	ctx := context.Background()

	ing := startIngest(t, "--nats-url", ns.ClientURL(), "--clickhouse-database", ch.Database,
		"--clickhouse-addr", testenv.ClickHouseAddr(), "--http-addr", testenv.FreeAddr(t), "--flush-interval", "50ms")
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "stream", 20*time.Second, func() bool { _, err := js.Stream(ctx, contract.Stream); return err == nil })
	stored := func() uint64 {
		var n uint64
		q := "SELECT (SELECT count() FROM `" + ch.Database + "`.measurements) + (SELECT count() FROM `" + ch.Database + "`.catalog) + (SELECT count() FROM `" + ch.Database + "`.incidents)"
		_ = ch.QueryRow(ctx, q).Scan(&n)
		return n
	}
	total := 0
	publishLevel := func(m string, level int) {
		evs, _ := eventsFor(maturity.SampleInput(m, level, at))
		pub := contract.NewPublisher(js)
		for _, ev := range evs {
			if err := pub.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		total += len(evs)
	}
	for level := 0; level <= maturity.MaxLevel; level++ {
		publishLevel(fmt.Sprintf("municipi-%d", level), level)
	}
	testenv.Eventually(t, "all events stored", 60*time.Second, func() bool { return stored() == uint64(total) })

	ecfg, err := evalconfig.Parse([]string{"--nats-url", ns.ClientURL(), "--clickhouse-database", ch.Database,
		"--clickhouse-addr", testenv.ClickHouseAddr(), "--http-addr", testenv.FreeAddr(t), "--evaluation-interval", "1s",
		"--criteria-file", "../../../deploy/evaluator/criteria.yaml", "--log-level", "warn"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := run(t, "evaluator", func(ctx context.Context) error { return evaluator.Run(ctx, ecfg, io.Discard) })
	changes := func() int { return streamMsgs(ctx, js, history.AssessmentStream) }
	testenv.Eventually(t, "level changes", 30*time.Second, func() bool { return changes() == maturity.MaxLevel })

	// NATS restarted under both services.
	ns.Shutdown()
	ns.WaitForShutdown()
	time.Sleep(time.Second)
	testenv.NATSOn(t, dir, port) // the same address: clients reconnect to it
	publishLevel("nou-3", 3)     // the publisher's connection reconnects too
	testenv.Eventually(t, "events published after the NATS restart stored", 60*time.Second, func() bool { return stored() == uint64(total) })
	testenv.Eventually(t, "level change announced after the NATS restart", 30*time.Second, func() bool { return changes() == maturity.MaxLevel+1 })
	want := maturity.MaxLevel + 1

	before := levels(t, ecfg)
	if len(before) != maturity.MaxLevel+2 || before["nou-3"] != 3 {
		t.Fatalf("levels before the restart: %v", before)
	}
	for m, l := range before {
		var level int
		if _, err := fmt.Sscanf(m, "municipi-%d", &level); err == nil && l != level {
			t.Errorf("%s: level %d, want %d", m, l, level)
		}
	}
	assessments := func(c evalconfig.Config) map[string]string {
		out := map[string]string{}
		for m := range before {
			resp, err := http.Get("http://" + c.HTTPAddr + "/api/v1/municipalities/" + m + "/assessment?at=" + at.Format(time.RFC3339))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", m, resp.StatusCode, b)
			}
			out[m] = string(b)
		}
		return out
	}
	beforeA := assessments(ecfg)
	history := func() uint64 {
		var n uint64
		if err := ch.QueryRow(ctx, "SELECT count() FROM `"+ch.Database+"`.maturity_changes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	recorded := history()
	if recorded != uint64(want) {
		t.Fatalf("%d level changes recorded, want %d", recorded, want)
	}

	// The evaluator restarted.
	ev.stop()
	ecfg.HTTPAddr = testenv.FreeAddr(t)
	run(t, "evaluator again", func(ctx context.Context) error { return evaluator.Run(ctx, ecfg, io.Discard) })
	testenv.Eventually(t, "evaluation after restart", 30*time.Second, func() bool {
		return getJSON(t, "http://"+ecfg.HTTPAddr+"/api/v1/municipalities", nil) == 200
	})
	if after := levels(t, ecfg); !reflect.DeepEqual(after, before) {
		t.Fatalf("levels after the restart %v, before %v", after, before)
	}
	afterA := assessments(ecfg)
	for m := range beforeA {
		if afterA[m] != beforeA[m] {
			t.Errorf("%s: assessment differs after the restart\nbefore: %s\n after: %s", m, beforeA[m], afterA[m])
		}
	}
	time.Sleep(3 * time.Second) // three evaluation cycles
	if n := changes(); n != want {
		t.Fatalf("%d level-change events after the restart, want %d", n, want)
	}
	if n := history(); n != recorded {
		t.Fatalf("%d level changes recorded after the restart, want %d", n, recorded)
	}
	ing.stop() // before the server goes away at cleanup
}

// levels lists every municipality's level through the API.
func levels(t *testing.T, c evalconfig.Config) map[string]int {
	t.Helper()
	var list struct {
		Municipalities []struct {
			Municipality string `json:"municipality"`
			Level        int    `json:"level"`
		} `json:"municipalities"`
	}
	if code := getJSON(t, "http://"+c.HTTPAddr+"/api/v1/municipalities", &list); code != 200 {
		t.Fatalf("list: %d", code)
	}
	out := map[string]int{}
	for _, m := range list.Municipalities {
		out[m.Municipality] = m.Level
	}
	return out
}
