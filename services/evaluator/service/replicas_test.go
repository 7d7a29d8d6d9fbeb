package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	evalconfig "github.com/assoliment/assoliment/services/evaluator/config"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	evaluator "github.com/assoliment/assoliment/services/evaluator/service"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// TestFaultClickHouseReplicaLost runs two ingest replicas against the two
// replicas of a ClickHouse 18.16 cluster (ZooKeeper, replicated tables,
// CLICKHOUSE_CLUSTER), each ingest with both addresses in its own order,
// while a publisher sends the designed municipalities and then a steady
// load with re-sent copies. The ClickHouse replica the writing ingest uses
// is stopped, SIGTERM, then killed, SIGKILL, each time for a few seconds:
// the ingest moves to the other replica and keeps storing; once both are
// back they hold the same rows and identities, every identity once
// (count, uniqExact and FINAL on each replica), the rollups equal, and an
// evaluator on either replica gives byte-identical assessments.
func TestFaultClickHouseReplicaLost(t *testing.T) {
	c := testenv.ClickHouseCluster(t, 2)
	ns := testenv.NATS(t)
	db := testenv.Database()
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Second)
	r := []*chconn.Conn{c.Conn(0, db), c.Conn(1, db)}
	addrs := []string{c.Replicas[0].Addr + "," + c.Replicas[1].Addr, c.Replicas[1].Addr + "," + c.Replicas[0].Addr}
	ingestOn := func(list string) *running {
		return startIngest(t, "--nats-url", ns.ClientURL(), "--clickhouse-addr", list, "--clickhouse-cluster", testenv.ClusterName,
			"--clickhouse-database", db, "--http-addr", testenv.FreeAddr(t), "--flush-interval", "50ms", "--ack-wait", "10s")
	}
	// The second ingest (on r1 first) starts last and takes the consumer
	// over, so the writer is on r1.
	ing2 := ingestOn(addrs[1])
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "stream", 60*time.Second, func() bool { _, err := js.Stream(ctx, contract.Stream); return err == nil })
	ing1 := ingestOn(addrs[0])

	published := map[string]bool{} // distinct identities sent
	var pubMu sync.Mutex
	pub := contract.NewPublisher(js)
	var designed int
	for level := 0; level <= maturity.MaxLevel; level++ {
		evs, _ := eventsFor(maturity.SampleInput(fmt.Sprintf("municipi-%d", level), level, at))
		for _, ev := range evs {
			if err := pub.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
			published[ev.Municipality+"/"+ev.Publisher+"/"+ev.ID] = true
		}
		designed += len(evs)
	}
	if err := pub.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	stored := func(conn *chconn.Conn, q string) uint64 {
		var n uint64
		sql := strings.ReplaceAll(q, "{t}", "(SELECT municipality, publisher, id FROM measurements UNION ALL SELECT municipality, publisher, id FROM catalog "+
			"UNION ALL SELECT municipality, publisher, id FROM incidents)")
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			return 0
		}
		return n
	}
	total := func(conn *chconn.Conn) uint64 { return stored(conn, "SELECT count() FROM {t}") }
	testenv.Eventually(t, "the designed municipalities stored", 60*time.Second, func() bool { return total(r[0]) == uint64(designed) })

	// A steady load of measurements, every tenth sent twice, published and
	// acknowledged while replicas are lost.
	var acked, copies atomic.Int64
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		steady := contract.NewPublisher(js, contract.WithMaxInFlight(256))
		base := at.Add(-24 * time.Hour)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; {
			select {
			case <-stop:
				done <- steady.Wait(ctx)
				return
			case <-tk.C:
			}
			for range 10 {
				ev := &contract.Event{ID: fmt.Sprintf("load-%d", i), Type: contract.TypeKPIMeasured, Time: base.Add(time.Duration(i) * time.Second),
					Municipality: []string{"municipi-3", "municipi-5", "carrega"}[i%3], Publisher: "fcc",
					Data: &contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: float64(i % 100)}}
				for n := range 1 + btoi(i%10 == 0) {
					if err := steady.Publish(ctx, ev); err != nil {
						done <- err
						return
					}
					acked.Add(1)
					copies.Add(int64(n))
				}
				pubMu.Lock()
				published[ev.Municipality+"/"+ev.Publisher+"/"+ev.ID] = true
				pubMu.Unlock()
				i++
			}
		}
	}()
	grows := func(conn *chconn.Conn, what string) {
		before := total(conn)
		testenv.Eventually(t, what, 60*time.Second, func() bool { return total(conn) > before+500 })
	}
	grows(r[0], "the load stored on r1")

	// r1 stopped: the writer moves to r2 and keeps storing; r1 back.
	c.Stop(0)
	lost := time.Now()
	grows(r[1], "the load stored on r2 while r1 is stopped")
	t.Logf("r1 stopped: storing again on r2 within %s", time.Since(lost).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	c.Start(0)
	r[0] = c.Conn(0, db)
	grows(r[1], "the load stored after r1 returned")

	// Now r2, the one written through, killed at once, and back.
	c.Kill(1)
	lost = time.Now()
	grows(r[0], "the load stored on r1 while r2 is killed")
	t.Logf("r2 killed: storing again on r1 within %s", time.Since(lost).Round(time.Millisecond))
	time.Sleep(2 * time.Second)
	c.Start(1)
	r[1] = c.Conn(1, db)
	grows(r[0], "the load stored after r2 returned")

	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("publisher: %v", err)
	}
	want := uint64(len(published))
	for i, conn := range r {
		testenv.Eventually(t, fmt.Sprintf("every identity on r%d", i+1), 120*time.Second, func() bool {
			return stored(conn, "SELECT uniqExact(municipality, publisher, id) FROM {t}") == want
		})
	}
	for i, conn := range r {
		rows, distinct := total(conn), stored(conn, "SELECT uniqExact(municipality, publisher, id) FROM {t}")
		final := stored(conn, "SELECT (SELECT count() FROM measurements FINAL) + (SELECT count() FROM catalog FINAL) + (SELECT count() FROM incidents FINAL)")
		t.Logf("r%d: published %d distinct events (%d designed; %d load messages, %d of them re-sent copies, all acknowledged); stored %d rows, %d identities, %d rows with FINAL",
			i+1, want, designed, acked.Load(), copies.Load(), rows, distinct, final)
		if rows != want || distinct != want || final != want {
			t.Errorf("r%d: %d rows, %d identities, %d with FINAL; want %d of each", i+1, rows, distinct, final, want)
		}
	}
	// Both losses were marked, and repaired; then each replica's identity
	// index (its own Set tables) holds every stored identity, those
	// written through the other replica while it was lost included.
	// A replica is repaired once it has done every entry of its
	// replication queue, which after a SIGKILL may take a while on a
	// loaded machine; on a time-out the state is printed.
	for deadline := time.Now().Add(150 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		var marked, stale uint64
		err := r[0].QueryRow(ctx, "SELECT toUInt64(countIf(m > 0)), toUInt64(countIf(m > rp)) FROM (SELECT replica, maxIf(at, repaired = 0) AS m, "+
			"maxIf(at, repaired = 1) AS rp FROM identity_index_marks GROUP BY replica)").Scan(&marked, &stale)
		if err == nil && marked == 2 && stale == 0 {
			break
		}
		if time.Now().After(deadline) {
			for i, conn := range r {
				var state string
				qerr := conn.QueryRow(ctx, "SELECT toString(groupArray(tuple(table, queue_size, log_pointer, log_max_index, is_readonly))) "+
					"FROM system.replicas WHERE database = currentDatabase()").Scan(&state)
				t.Logf("r%d replication state (table, queue, log pointer, log max, read-only): %s %v", i+1, state, qerr)
			}
			t.Fatalf("both replicas' indexes not marked and repaired: %d marked, %d stale, %v", marked, stale, err)
		}
	}
	for i, conn := range r {
		var tables []string
		rows, err := conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND match(name, '^identities_[0-9]{6}$')")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, "h IN "+n)
		}
		rows.Close()
		if len(tables) == 0 {
			t.Fatalf("r%d: no identity index", i+1)
		}
		in := stored(conn, "SELECT count() FROM (SELECT cityHash64(municipality, publisher, id) AS h FROM {t}) WHERE "+strings.Join(tables, " OR "))
		if in != want {
			t.Errorf("r%d: %d of %d stored identities in its identity index", i+1, in, want)
		}
	}

	// The rollups the views filled on whichever replica took each insert
	// are the same on both: each row's digest, summed.
	for _, q := range []string{
		"SELECT sum(cityHash64(toString(tuple(*)))) FROM measurement_days FINAL",
		"SELECT toUInt64(sum(samples)) FROM measurement_days",
		"SELECT sum(cityHash64(toString(tuple(*)))) FROM incident_keys FINAL",
		"SELECT sum(cityHash64(toString(tuple(*)))) FROM incident_names FINAL",
	} {
		var a, b uint64
		if err := r[0].QueryRow(ctx, q).Scan(&a); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if err := r[1].QueryRow(ctx, q).Scan(&b); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if a != b || a == 0 {
			t.Errorf("rollups differ between the replicas: %s: r1 %d, r2 %d", q, a, b)
		}
	}

	// An evaluator on each replica: the same assessments, byte for byte.
	assess := func(replica int) map[string]string {
		cfg, err := evalconfig.Parse([]string{"--nats-url", ns.ClientURL(), "--clickhouse-database", db,
			"--clickhouse-addr", c.Replicas[replica].Addr, "--clickhouse-cluster", testenv.ClusterName, "--http-addr", testenv.FreeAddr(t),
			"--evaluation-interval", "1h", "--criteria-file", "../../../deploy/evaluator/criteria.yaml", "--log-level", "warn"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ev := run(t, fmt.Sprintf("evaluator on r%d", replica+1), func(ctx context.Context) error { return evaluator.Run(ctx, cfg, io.Discard) })
		defer ev.stop()
		testenv.Eventually(t, "evaluator answering", 60*time.Second, func() bool {
			return getJSON(t, "http://"+cfg.HTTPAddr+"/api/v1/municipalities", nil) == 200
		})
		out := map[string]string{}
		for level := 0; level <= maturity.MaxLevel; level++ {
			m := fmt.Sprintf("municipi-%d", level)
			resp, err := http.Get("http://" + cfg.HTTPAddr + "/api/v1/municipalities/" + m + "/assessment?at=" + at.Format(time.RFC3339))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("r%d %s: %d %s", replica+1, m, resp.StatusCode, b)
			}
			out[m] = string(b)
		}
		return out
	}
	one, two := assess(0), assess(1)
	for m, a := range one {
		if two[m] != a {
			t.Errorf("%s: assessments differ\non r1: %s\non r2: %s", m, a, two[m])
		}
		if want := fmt.Sprintf(`"level":%s`, strings.TrimPrefix(m, "municipi-")); !strings.Contains(a, want) {
			t.Errorf("%s: %s lacks %s", m, a, want)
		}
	}
	ing1.stop()
	ing2.stop()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
