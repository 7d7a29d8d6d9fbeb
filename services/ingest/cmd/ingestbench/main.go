// Command ingestbench measures the ingest path on this machine, in one run
// and with the same events:
//
//   - end to end: a publisher in its own process (the simulator's load mode)
//     → JetStream file storage (natsd) → the ingest process → committed in
//     ClickHouse;
//   - baseline "JetStream consume-only": the same messages consumed and
//     acknowledged from the stream by a plain pull consumer;
//   - baseline "ClickHouse insert-only": the same events, decoded beforehand,
//     inserted in batches of the ingest's size into a fresh database;
//   - latency from publish to queryable at a steady rate;
//   - the ingest process's peak RSS.
//
// It prints one JSON object.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/proc"
	"github.com/assoliment/assoliment/services/storage"
)

type report struct {
	Events              int     `json:"events"`
	EndToEndPerSecond   float64 `json:"end_to_end_events_per_second"`
	ConsumeOnlyPerSec   float64 `json:"jetstream_consume_only_events_per_second"`
	InsertOnlyPerSec    float64 `json:"clickhouse_insert_only_events_per_second"`
	RatioToSlower       float64 `json:"ratio_to_slower_baseline"`
	LatencyRate         int     `json:"latency_rate_events_per_second"`
	LatencyEvents       int     `json:"latency_events"`
	LatencyP50Ms        float64 `json:"latency_p50_ms"`
	LatencyP99Ms        float64 `json:"latency_p99_ms"`
	LatencyMaxMs        float64 `json:"latency_max_ms"`
	IngestPeakRSSMiB    float64 `json:"ingest_peak_rss_mib"`
	ClickHouseVersion   string  `json:"clickhouse_version"`
	BatchSize           int     `json:"batch_size"`
	PublisherPerSecond  float64 `json:"publisher_acked_per_second"`
	EndToEndSeconds     float64 `json:"end_to_end_seconds"`
	ConsumeOnlySeconds  float64 `json:"consume_only_seconds"`
	InsertOnlySeconds   float64 `json:"insert_only_seconds"`
	LatencyWindowSecond float64 `json:"latency_window_seconds"`
}

func main() {
	addr := flag.String("clickhouse-addr", "127.0.0.1:9000", "ClickHouse native address")
	bin := flag.String("bin", "bin", "folder with natsd, ingest and simulator")
	n := flag.Int("events", 500000, "events for the throughput runs")
	rate := flag.Int("latency-rate", 5000, "steady rate for the latency run (events/s)")
	dur := flag.Duration("latency-duration", 30*time.Second, "length of the latency run")
	batch := flag.Int("batch-size", 5000, "ingest batch size")
	flag.Parse()
	if err := run(*addr, *bin, *n, *rate, *dur, *batch); err != nil {
		fmt.Fprintln(os.Stderr, "ingestbench:", err)
		os.Exit(1)
	}
}

func run(addr, bin string, n, rate int, dur time.Duration, batch int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ingestbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	natsAddr, err := proc.FreeAddr()
	if err != nil {
		return err
	}
	natsURL := "nats://" + natsAddr
	natsd, err := proc.Start(filepath.Join(bin, "natsd"), "--addr", natsAddr, "--store", filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	defer proc.Stop(natsd)
	db := fmt.Sprintf("bench_ingest_%d", time.Now().Unix())
	ch, err := chconn.Open(ctx, chconn.Options{Addr: addr, Database: db, User: "default"})
	if err != nil {
		return err
	}
	defer ch.Close()
	defer ch.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`")
	r := &report{Events: n, LatencyRate: rate, BatchSize: batch, ClickHouseVersion: ch.Version.Version.String()}

	httpAddr, _ := proc.FreeAddr()
	ingest, err := proc.Start(filepath.Join(bin, "ingest"), "--nats-url", natsURL, "--clickhouse-addr", addr,
		"--clickhouse-database", db, "--http-addr", httpAddr, "--batch-size", strconv.Itoa(batch), "--log-level", "warn")
	if err != nil {
		return err
	}
	defer proc.Stop(ingest)
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := proc.WaitFor(60*time.Second, func() bool { _, err := js.Consumer(ctx, contract.Stream, "ingest"); return err == nil }); err != nil {
		return fmt.Errorf("ingest did not create its consumer: %w", err)
	}

	// End to end.
	t0 := time.Now()
	pub := exec.Command(filepath.Join(bin, "simulator"), "--nats-url", natsURL, "--mode", "load", "--rate", "0",
		"--count", strconv.Itoa(n), "--seed", "7", "--log-level", "warn")
	pub.Stderr = os.Stderr
	out, err := pub.Output()
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	var counts struct {
		Published int64   `json:"published"`
		Acked     int64   `json:"acked"`
		Rate      float64 `json:"acked_per_second"`
	}
	if err := json.Unmarshal(proc.LastLine(out), &counts); err != nil {
		return fmt.Errorf("publisher output %q: %w", out, err)
	}
	r.PublisherPerSecond = counts.Rate
	total := uint64(counts.Acked)
	if err := proc.WaitFor(10*time.Minute, func() bool { return stored(ctx, ch) >= total }); err != nil {
		return fmt.Errorf("end to end: %d of %d stored", stored(ctx, ch), total)
	}
	r.EndToEndSeconds = time.Since(t0).Seconds()
	r.EndToEndPerSecond = float64(total) / r.EndToEndSeconds

	// Latency at a steady rate, through the same running ingest.
	p50, p99, pmax, events, err := latency(ctx, js, ch, rate, dur)
	if err != nil {
		return err
	}
	r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.LatencyEvents, r.LatencyWindowSecond = p50, p99, pmax, events, dur.Seconds()
	r.IngestPeakRSSMiB = proc.Memory(ingest.Process.Pid, "VmHWM")
	proc.Stop(ingest)

	// Baseline: JetStream consume-only, the same messages of the end-to-end run.
	msgs, secs, err := consumeOnly(ctx, js, int(total))
	if err != nil {
		return err
	}
	r.ConsumeOnlySeconds = secs
	r.ConsumeOnlyPerSec = float64(total) / secs

	// Baseline: ClickHouse insert-only, the same events decoded beforehand.
	secs, err = insertOnly(ctx, addr, db+"_insert", msgs, batch)
	if err != nil {
		return err
	}
	r.InsertOnlySeconds = secs
	r.InsertOnlyPerSec = float64(len(msgs)) / secs
	r.RatioToSlower = r.EndToEndPerSecond / min(r.ConsumeOnlyPerSec, r.InsertOnlyPerSec)
	b, _ := json.MarshalIndent(r, "", "  ")
	fmt.Println(string(b))
	return nil
}

func stored(ctx context.Context, ch *chconn.Conn) uint64 {
	var n uint64
	_ = ch.QueryRow(ctx, fmt.Sprintf("SELECT (SELECT count() FROM %s) + (SELECT count() FROM %s) + (SELECT count() FROM %s)",
		ch.Table("measurements"), ch.Table("catalog"), ch.Table("incidents"))).Scan(&n)
	return n
}

// latency publishes measurements at a steady rate and polls ClickHouse for
// newly visible stream sequences; each event's latency is the time from
// just before its publish to the first poll that sees it.
func latency(ctx context.Context, js jetstream.JetStream, ch *chconn.Conn, rate int, dur time.Duration) (p50, p99, pmax float64, n int, err error) {
	var mu sync.Mutex
	sent := map[string]time.Time{}
	seqSent := map[uint64]time.Time{}
	pub := contract.NewPublisher(js, contract.WithMaxInFlight(2048), contract.WithResults(func(r contract.Result) {
		if r.Err == nil {
			mu.Lock()
			seqSent[r.Ack.Sequence] = sent[r.ID]
			mu.Unlock()
		}
	}))
	var floor uint64
	if err := ch.QueryRow(ctx, "SELECT max(stream_seq) FROM "+ch.Table("measurements")).Scan(&floor); err != nil {
		return 0, 0, 0, 0, err
	}
	seen := map[uint64]time.Time{}
	done := make(chan struct{})
	pollErr := make(chan error, 1)
	go func() {
		last := floor
		for {
			select {
			case <-done:
				pollErr <- nil
				return
			default:
			}
			rows, err := ch.Query(ctx, "SELECT stream_seq FROM "+ch.Table("measurements")+" WHERE stream_seq > ?", last)
			if err != nil {
				pollErr <- err
				return
			}
			now := time.Now()
			for rows.Next() {
				var s uint64
				_ = rows.Scan(&s)
				if _, ok := seen[s]; !ok {
					seen[s] = now
				}
			}
			rows.Close()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	total := int(float64(rate) * dur.Seconds())
	start := time.Now()
	at := time.Now().UTC().Add(-time.Hour)
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(float64(i) / float64(rate) * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		ev := &contract.Event{ID: fmt.Sprintf("lat-%d", i), Type: contract.TypeKPIMeasured, Time: at.Add(time.Duration(i) * time.Millisecond),
			Municipality: "latency", Publisher: "bench", Data: &contract.KPIMeasured{Service: "s", KPI: "k", Value: float64(i % 100)}}
		mu.Lock()
		sent[ev.ID] = time.Now()
		mu.Unlock()
		if err := pub.Publish(ctx, ev); err != nil {
			return 0, 0, 0, 0, err
		}
	}
	if err := pub.Wait(ctx); err != nil {
		return 0, 0, 0, 0, err
	}
	_ = proc.WaitFor(time.Minute, func() bool {
		var c uint64
		_ = ch.QueryRow(ctx, "SELECT count() FROM "+ch.Table("measurements")+" WHERE stream_seq > ?", floor).Scan(&c)
		return c >= uint64(total)
	})
	time.Sleep(50 * time.Millisecond)
	close(done)
	if err := <-pollErr; err != nil {
		return 0, 0, 0, 0, err
	}
	var lat []float64
	mu.Lock()
	for seq, t := range seqSent {
		if v, ok := seen[seq]; ok {
			lat = append(lat, float64(v.Sub(t).Microseconds())/1000)
		}
	}
	mu.Unlock()
	if len(lat) < total {
		return 0, 0, 0, 0, fmt.Errorf("latency: %d of %d events seen", len(lat), total)
	}
	sort.Float64s(lat)
	q := func(p float64) float64 { return lat[int(p*float64(len(lat)-1))] }
	return q(0.50), q(0.99), lat[len(lat)-1], len(lat), nil
}

// consumeOnly reads and acknowledges the first n messages of the stream with
// a fresh durable pull consumer, and returns their bodies.
func consumeOnly(ctx context.Context, js jetstream.JetStream, n int) ([]jetstream.Msg, float64, error) {
	cons, err := js.CreateOrUpdateConsumer(ctx, contract.Stream, jetstream.ConsumerConfig{
		Durable: "bench-consume", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 50000,
	})
	if err != nil {
		return nil, 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(5000))
	if err != nil {
		return nil, 0, err
	}
	defer it.Stop()
	msgs := make([]jetstream.Msg, 0, n)
	start := time.Now()
	for len(msgs) < n {
		m, err := it.Next()
		if err != nil {
			return nil, 0, err
		}
		if err := m.Ack(); err != nil {
			return nil, 0, err
		}
		msgs = append(msgs, m)
	}
	return msgs, time.Since(start).Seconds(), nil
}

// insertOnly decodes msgs (not timed), then inserts them in batches.
func insertOnly(ctx context.Context, addr, db string, msgs []jetstream.Msg, batch int) (float64, error) {
	ch, err := chconn.Open(ctx, chconn.Options{Addr: addr, Database: db, User: "default"})
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	defer ch.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`")
	if err := storage.Migrate(ctx, storage.NewConn(ch)); err != nil {
		return 0, err
	}
	rows := make([]store.Row, 0, len(msgs))
	now := time.Now()
	for i, m := range msgs {
		ev, rej := contract.Decode(m.Subject(), m.Data(), contract.Rules{Now: now})
		if rej != nil {
			continue
		}
		rows = append(rows, store.Row{Event: ev, StreamSeq: uint64(i + 1), IngestedAt: now})
	}
	s := store.New(ch, 400*24*time.Hour, slog.Default())
	start := time.Now()
	for i := 0; i < len(rows); i += batch {
		if err := s.Insert(ctx, rows[i:min(i+batch, len(rows))]); err != nil {
			return 0, err
		}
	}
	return time.Since(start).Seconds(), nil
}
