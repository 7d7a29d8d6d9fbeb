package service_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/config"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// storedBy reads how many measurements an ingest at httpAddr has stored.
func storedBy(t *testing.T, httpAddr string) float64 {
	t.Helper()
	_, body := get(t, "http://"+httpAddr+"/metrics")
	want := `smartcity_ingest_events_total{outcome="stored",type="` + contract.TypeKPIMeasured + `"} `
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, want); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// TestPinnedReplicasStoreCopiesOnce runs two replicas on the pinned
// consumer while every event is published twice in quick succession:
// one replica writes, the other waits as a standby, and each identity is
// stored once.
func TestPinnedReplicasStoreCopiesOnce(t *testing.T) {
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	createStream(t, js)
	var addrs []string
	for range 2 {
		cfg, _ := ingestIn(t, ns.ClientURL(), testenv.ClickHouseAddr(), ch, os.Stderr, "--batch-size", "500")
		addrs = append(addrs, cfg.HTTPAddr)
		testenv.Eventually(t, "replica ready", 30*time.Second, func() bool { return httpUp(cfg) })
	}
	at := time.Now().UTC().Add(-time.Hour)
	publishEvent(t, js, event(contract.TypeKPIMeasured, "vic", "fcc", "warm-up", at, &contract.KPIMeasured{Service: "s", KPI: "k", Value: 1}))
	testenv.Eventually(t, "warm-up stored", 20*time.Second, func() bool { return count(t, ch, "SELECT count() FROM {db}.measurements") == 1 })
	// The counter grows just after the commit the query sees.
	testenv.Eventually(t, "warm-up counted", 10*time.Second, func() bool { return storedBy(t, addrs[0])+storedBy(t, addrs[1]) == 1 })
	before := []float64{storedBy(t, addrs[0]), storedBy(t, addrs[1])}

	const n = 20000
	ctx := context.Background()
	pub := contract.NewPublisher(js, contract.WithMaxInFlight(2048))
	for i := range n {
		ev := event(contract.TypeKPIMeasured, []string{"vic", "olot", "berga"}[i%3], "fcc", fmt.Sprintf("twice-%d", i), at.Add(time.Duration(i)*time.Millisecond),
			&contract.KPIMeasured{Service: "s", KPI: "k", Value: float64(i)})
		b, err := contract.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // two copies, one right after the other, without broker message ids
			if err := pub.PublishRaw(ctx, ev.Subject(), "", b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := pub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, ch, n+1)
	grew := 0
	for i, addr := range addrs {
		if d := storedBy(t, addr) - before[i]; d > 0 {
			grew++
			t.Logf("replica %d stored %.0f", i+1, d)
		}
	}
	if grew != 1 {
		t.Fatalf("%d replicas stored events while one held the pin", grew)
	}
}

// TestTakeoverAfterKill kills the pinned writer of two ingest processes
// with SIGKILL under a steady load and starts it again at once: storing
// resumes within 5 s (the restarted process releases the dead one's pin,
// and the standby or the restarted process takes it), and each identity is
// stored once.
func TestTakeoverAfterKill(t *testing.T) {
	bin := buildIngest(t)
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	createStream(t, js)
	t.Cleanup(func() { dumpState(t, js) })
	sp := publishSteady(t, js, 2000)
	procs := []*proc{startIngest(t, bin, ns.ClientURL(), ch, "--batch-size", "1000")}
	testenv.Eventually(t, "the first process storing", 30*time.Second, func() bool { return rowsStored(ch) > 1000 })
	procs = append(procs, startIngest(t, bin, ns.ClientURL(), ch, "--batch-size", "1000"))
	up := func(p *proc) {
		testenv.Eventually(t, "the process's HTTP server up", 30*time.Second, func() bool { return httpUp(config.Config{HTTPAddr: p.http}) })
	}
	for round := range 3 {
		up(procs[0])
		up(procs[1])
		// The writer is the one whose count grows.
		var writer int
		testenv.Eventually(t, "a writer", 30*time.Second, func() bool {
			a, b := storedBy(t, procs[0].http), storedBy(t, procs[1].http)
			time.Sleep(300 * time.Millisecond)
			da, db := storedBy(t, procs[0].http)-a, storedBy(t, procs[1].http)-b
			switch {
			case da > 0 && db == 0:
				writer = 0
			case db > 0 && da == 0:
				writer = 1
			default:
				return false
			}
			return true
		})
		killed := time.Now()
		procs[writer].kill()
		procs[writer] = startIngest(t, bin, ns.ClientURL(), ch, "--batch-size", "1000")
		resumed := waitResumed(t, ch, killed)
		t.Logf("round %d: killed the writer with SIGKILL; storing resumed %s later", round+1, resumed.Round(time.Millisecond))
		if resumed > 5*time.Second {
			t.Errorf("storing resumed %s after the writer was killed, want within 5 s", resumed)
		}
	}
	n := sp.stop(t)
	assertExactlyOnce(t, ch, n)
}

// TestFaultHeaderFlood floods the stream with 1,000 messages carrying the
// headers the client library would take for the server's (half of them
// empty, with Status and Description; half valid events with Nats-Pin-Id)
// between 500 valid events of another publisher: everything is settled
// within 10 s of the first publish, the valid events stored and the empty
// messages dead-lettered, and the writer keeps its pin throughout.
func TestFaultHeaderFlood(t *testing.T) {
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	cfg, _ := ingestIn(t, ns.ClientURL(), testenv.ClickHouseAddr(), ch, os.Stderr, "--batch-size", "100")
	ctx := context.Background()
	now := time.Now().UTC()
	publishEvent(t, js, event(contract.TypeKPIMeasured, "olot", "council", "warm-up", now.Add(-time.Minute),
		&contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: 1})) // waits for the streams
	testenv.Eventually(t, "warm-up stored", 10*time.Second, func() bool { return count(t, ch, "SELECT count() FROM {db}.measurements") == 1 })

	statuses := []nats.Header{
		{"Status": {"400"}, "Description": {"Bad Request"}},
		{"Status": {"100"}, "Description": {"Idle Heartbeat"}},
		{"Status": {"409"}, "Description": {"Consumer Deleted"}},
		{"Status": {"408"}, "Description": {"Request Timeout"}, "Nats-Pending-Messages": {"100000"}, "Nats-Pending-Bytes": {"100000000"}},
		{"Status": {"423"}, "Description": {"Nats-Pin-Id mismatch"}},
	}
	start := time.Now()
	pub := contract.NewPublisher(js, contract.WithMaxInFlight(1024))
	const hostile = 1000
	for i := range hostile {
		if i%2 == 0 {
			m := &nats.Msg{Subject: "smartcity.olot.evil.measurement", Header: statuses[(i/2)%len(statuses)]}
			if _, err := js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
			continue
		}
		ev := event(contract.TypeKPIMeasured, "olot", "evil", fmt.Sprintf("pinned-%d", i), now.Add(-time.Minute),
			&contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: 1})
		b, err := contract.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		m := &nats.Msg{Subject: ev.Subject(), Header: nats.Header{"Nats-Pin-Id": {"FAKE"}}, Data: b}
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
		ev = event(contract.TypeKPIMeasured, "sabadell", "fcc", fmt.Sprintf("after-%d", i), now.Add(-time.Minute),
			&contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: float64(i)})
		if err := pub.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "every valid event stored", time.Until(start.Add(10*time.Second)), func() bool {
		return count(t, ch, "SELECT count() FROM {db}.measurements") == 1+hostile
	})
	dlq, err := js.Stream(ctx, contract.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "every empty message dead-lettered", time.Until(start.Add(10*time.Second)), func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == hostile/2
	})
	t.Logf("%d hostile messages and %d valid events settled %s after the first publish", hostile, hostile/2, time.Since(start).Round(time.Millisecond))
	_, body := get(t, "http://"+cfg.HTTPAddr+"/metrics")
	if !strings.Contains(body, `smartcity_ingest_race_checks_total{reason="writer_changed"} 0`) {
		t.Errorf("the writer lost its pin during the flood:\n%s", grepLines(body, "race_checks"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
