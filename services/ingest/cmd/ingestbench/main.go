// Command ingestbench measures the ingest service on this machine, in one
// run, with its baselines:
//
//   - the drain of a pre-filled stream: the stream is filled first (not
//     timed), then one ingest process is started and timed from its start
//     to the last row stored, with 0, 10 M and 100 M measurements already
//     stored (generated inside ClickHouse, their identity index filled
//     through the service's own fill path, which is timed too);
//   - baseline "JetStream consume-only": the first drain's messages read
//     and acknowledged by a plain pull consumer;
//   - baseline "ClickHouse insert-only": the same events, decoded
//     beforehand, inserted by a program in batches of the ingest's size;
//   - where the time of a flush goes, from the ingest's own step timings;
//   - the ingest's peak RSS, and how long storing takes to resume after the
//     writer is killed with SIGKILL and started again, with a backlog;
//   - latency from publish to queryable at a steady rate.
//
// It prints one JSON object and draws the drain curve as a PNG.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/internal/pipeline"
	"github.com/assoliment/assoliment/services/ingest/internal/store"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/proc"
	"github.com/assoliment/assoliment/services/storage"
)

// maxLateness is the ingest's default MAX_LATENESS: the index covers its
// months.
const maxLateness = 400 * 24 * time.Hour

type drain struct {
	Stored           uint64             `json:"stored_measurements"`
	GenerateSeconds  float64            `json:"generate_seconds"`
	IndexFillSeconds float64            `json:"index_fill_seconds"`
	Events           int                `json:"events"`
	Seconds          float64            `json:"drain_seconds"`
	PerSecond        float64            `json:"drain_events_per_second"`
	OtherRuns        []float64          `json:"other_runs_events_per_second,omitempty"`
	PeakRSSMiB       float64            `json:"ingest_peak_rss_mib"`
	Batches          float64            `json:"batches"`
	StepMs           map[string]float64 `json:"mean_ms_per_batch_by_step"`
	RaceChecks       float64            `json:"race_checks"`
	Rows             uint64             `json:"rows_of_the_drained_events"`
	Identities       uint64             `json:"identities_of_the_drained_events"`
}

type report struct {
	ClickHouseVersion    string    `json:"clickhouse_version"`
	BatchSize            int       `json:"batch_size"`
	PublisherPerSecond   float64   `json:"publisher_acked_per_second"`
	ConsumeOnlyPerSecond float64   `json:"jetstream_consume_only_events_per_second"`
	InsertOnlyPerSecond  float64   `json:"clickhouse_insert_only_events_per_second"`
	Drains               []drain   `json:"drains"`
	LargestToEmpty       float64   `json:"drain_largest_to_empty_ratio"`
	PeakRSSMiB           float64   `json:"ingest_peak_rss_mib"`
	ResumeSeconds        []float64 `json:"resume_after_sigkill_seconds"`
	ResumeEvents         int       `json:"resume_backlog_events"`
	ResumeExactlyOnce    bool      `json:"resume_exactly_once"`
	LatencyRate          int       `json:"latency_rate_events_per_second"`
	LatencyEvents        int       `json:"latency_events"`
	LatencyP50Ms         float64   `json:"latency_p50_ms"`
	LatencyP99Ms         float64   `json:"latency_p99_ms"`
	LatencyMaxMs         float64   `json:"latency_max_ms"`
	TotalSeconds         float64   `json:"total_seconds"`
}

type options struct {
	addr, bin, chart string
	events, batch    int
	runs             int
	sizes            []uint64
	kills            int
	rate             int
	latency          time.Duration
}

func main() {
	var o options
	var sizes string
	flag.StringVar(&o.addr, "clickhouse-addr", "127.0.0.1:9000", "ClickHouse native address")
	flag.StringVar(&o.bin, "bin", "bin", "folder with natsd and ingest")
	flag.IntVar(&o.events, "events", 500000, "events drained at each size")
	flag.StringVar(&sizes, "sizes", "0,10000000,100000000", "measurements stored before each drain, ascending")
	flag.IntVar(&o.batch, "batch-size", 5000, "ingest batch size")
	flag.IntVar(&o.runs, "runs", 2, "drains at each size (fresh events and process each); the fastest is reported, with the others")
	flag.IntVar(&o.kills, "kills", 3, "SIGKILLs of the writer for the resume time")
	flag.IntVar(&o.rate, "latency-rate", 5000, "steady rate for the latency run (events/s)")
	flag.DurationVar(&o.latency, "latency-duration", 30*time.Second, "length of the latency run")
	flag.StringVar(&o.chart, "chart", "", "PNG file for the drain curve (none when empty)")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil || (len(o.sizes) > 0 && n < o.sizes[len(o.sizes)-1]) {
			fmt.Fprintf(os.Stderr, "ingestbench: --sizes %q: ascending whole numbers, comma-separated\n", sizes)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ingestbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "ingestbench: "+format+"\n", args...) }

func run(o options) error {
	began := time.Now()
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
	natsd, err := proc.Start(filepath.Join(o.bin, "natsd"), "--addr", natsAddr, "--mqtt-addr", "", "--store", filepath.Join(dir, "nats"))
	if err != nil {
		return err
	}
	defer proc.Stop(natsd)
	db := fmt.Sprintf("bench_ingest_%d", time.Now().Unix())
	ch, err := chconn.Open(ctx, chconn.Options{Addr: o.addr, Database: db, User: "default"})
	if err != nil {
		return err
	}
	defer ch.Close()
	defer ch.Exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS `"+db+"`")
	if err := storage.Migrate(ctx, storage.NewConn(ch)); err != nil {
		return err
	}
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cfg := pipeline.Config{Stream: contract.Stream, DeadLetterStream: contract.DeadLetterStream}
	if err := proc.WaitFor(30*time.Second, func() bool {
		for _, sc := range cfg.Streams() {
			if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("create the streams: %w", err)
	}
	r := &report{BatchSize: o.batch, ClickHouseVersion: ch.Version.Version.String(), LatencyRate: o.rate}
	at := time.Now().UTC()
	b := &bench{o: o, ch: ch, js: js, db: db, natsURL: natsURL, st: store.New(ch, maxLateness, slog.New(slog.NewTextHandler(io.Discard, nil)))}

	// The first drain's events, and the baselines on the same messages.
	evs := events(o.events, at, 1)
	for _, e := range evs {
		e.Source = "urn:bench-drain-0"
	}
	if r.PublisherPerSecond, err = publish(ctx, js, evs); err != nil {
		return err
	}
	logf("stream filled with %d events (%.0f/s acknowledged)", len(evs), r.PublisherPerSecond)
	msgs, rate, err := consumeOnly(ctx, js, 1, len(evs))
	if err != nil {
		return err
	}
	r.ConsumeOnlyPerSecond = rate
	if r.InsertOnlyPerSecond, err = insertOnly(ctx, o.addr, db+"_insert", msgs, o.batch); err != nil {
		return err
	}
	logf("baselines: consume-only %.0f/s, insert-only %.0f/s", r.ConsumeOnlyPerSecond, r.InsertOnlyPerSecond)

	var generated uint64
	for i, size := range o.sizes {
		d := drain{Stored: size, Events: o.events}
		t := time.Now()
		if err := fill(ctx, ch, at, generated, size); err != nil {
			return err
		}
		generated = max(generated, size)
		d.GenerateSeconds = time.Since(t).Seconds()
		// Every index table dropped and filled again from the event
		// tables: the path of a first start on stored data.
		t = time.Now()
		if err := b.refillIndex(ctx, at); err != nil {
			return err
		}
		d.IndexFillSeconds = time.Since(t).Seconds()
		logf("%d measurements stored (generated in %.0f s), index filled in %.1f s", size, d.GenerateSeconds, d.IndexFillSeconds)
		// Each run drains fresh events with a fresh process; the machine
		// is shared, so the fastest run is the one least disturbed.
		var best drain
		var others []float64
		for run := range o.runs {
			k := i*o.runs + run
			if k > 0 {
				evs = events(o.events, at, uint64(k+1))
				for _, e := range evs {
					e.Source = fmt.Sprintf("urn:bench-drain-%d", k)
				}
				if _, err := publish(ctx, js, evs); err != nil {
					return err
				}
			}
			if err := quiet(ctx, ch); err != nil {
				return err
			}
			d := d
			if err := b.drain(ctx, &d, k); err != nil {
				return err
			}
			r.PeakRSSMiB = max(r.PeakRSSMiB, d.PeakRSSMiB)
			logf("drained %d events in %.1f s: %.0f/s, peak RSS %.0f MiB, %d rows for %d identities",
				d.Events, d.Seconds, d.PerSecond, d.PeakRSSMiB, d.Rows, d.Identities)
			if d.PerSecond > best.PerSecond {
				if best.PerSecond > 0 {
					others = append(others, best.PerSecond)
				}
				best = d
			} else {
				others = append(others, d.PerSecond)
			}
		}
		best.OtherRuns = others
		r.Drains = append(r.Drains, best)
	}
	if n := len(r.Drains); n > 1 {
		r.LargestToEmpty = r.Drains[n-1].PerSecond / r.Drains[0].PerSecond
	}

	// Resume after SIGKILL with a backlog, then latency through the
	// running ingest, with the largest table.
	if err := quiet(ctx, ch); err != nil {
		return err
	}
	if err := b.resume(ctx, r, at); err != nil {
		return err
	}
	if o.chart != "" {
		if err := writeChart(o.chart, r); err != nil {
			return err
		}
	}
	r.TotalSeconds = time.Since(began).Seconds()
	out, _ := json.MarshalIndent(r, "", "  ")
	fmt.Println(string(out))
	return nil
}

type bench struct {
	o       options
	ch      *chconn.Conn
	js      jetstream.JetStream
	db      string
	natsURL string
	st      *store.Store
}

// refillIndex drops every table of the identity index and fills them
// again from the event tables, as a first start on stored data does.
func (b *bench) refillIndex(ctx context.Context, at time.Time) error {
	e := storage.NewConn(b.ch)
	var names []storage.TableName
	if err := e.Select(ctx, &names, storage.IdentityTables()); err != nil {
		return err
	}
	for _, n := range names {
		if err := e.Exec(ctx, storage.DropTable(n.Name)); err != nil {
			return err
		}
	}
	return b.st.PrepareIndex(ctx, at)
}

// ingest is a running ingest process.
type ingest struct {
	cmd  *exec.Cmd
	http string
}

func (b *bench) startIngest() (*ingest, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd, err := proc.Start(filepath.Join(b.o.bin, "ingest"), "--nats-url", b.natsURL, "--clickhouse-addr", b.o.addr,
		"--clickhouse-database", b.db, "--http-addr", addr, "--batch-size", strconv.Itoa(b.o.batch), "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	return &ingest{cmd: cmd, http: addr}, nil
}

// quiet waits (up to ten minutes) until the server runs no merge: rows
// generated just before, in this database or another on the same server,
// would otherwise be merged during the drain (chconn.WaitNoMerges).
func quiet(ctx context.Context, ch *chconn.Conn) error {
	waited, err := ch.WaitNoMerges(ctx, 10*time.Minute)
	if err != nil {
		return err
	}
	if waited > 2*time.Second {
		logf("waited %.0f s for the server's background merges to end", waited.Seconds())
	}
	return nil
}

func rows(ctx context.Context, ch *chconn.Conn) uint64 {
	var n uint64
	_ = ch.QueryRow(ctx, "SELECT count() FROM "+ch.Table("measurements")).Scan(&n)
	return n
}

// drain starts one ingest process on the filled stream and times it to
// the last row of the drain's events.
func (b *bench) drain(ctx context.Context, d *drain, k int) error {
	want := rows(ctx, b.ch) + uint64(d.Events)
	start := time.Now()
	ing, err := b.startIngest()
	if err != nil {
		return err
	}
	defer proc.Stop(ing.cmd)
	if err := proc.WaitFor(30*time.Minute, func() bool { return rows(ctx, b.ch) >= want }); err != nil {
		return fmt.Errorf("drain at %d stored: %d of %d rows", d.Stored, rows(ctx, b.ch), want)
	}
	d.Seconds = time.Since(start).Seconds()
	d.PerSecond = float64(d.Events) / d.Seconds
	d.PeakRSSMiB = proc.Memory(ing.cmd.Process.Pid, "VmHWM")
	metrics, err := scrape(ing.http)
	if err != nil {
		return err
	}
	d.Batches = metrics[`smartcity_ingest_flush_step_seconds_count{step="insert"}`]
	d.StepMs = map[string]float64{}
	for _, step := range []string{"lookup", "index", "insert", "pin_check", "race_check", "ack"} {
		sum, n := metrics[`smartcity_ingest_flush_step_seconds_sum{step="`+step+`"}`], metrics[`smartcity_ingest_flush_step_seconds_count{step="`+step+`"}`]
		if n > 0 && d.Batches > 0 {
			d.StepMs[step] = sum * 1000 / d.Batches
		}
	}
	for _, reason := range []string{"slow", "writer_changed", "redelivered"} {
		d.RaceChecks += metrics[`smartcity_ingest_race_checks_total{reason="`+reason+`"}`]
	}
	if err := proc.Stop(ing.cmd); err != nil {
		return err
	}
	return b.ch.QueryRow(ctx, "SELECT count(), uniqExact(municipality, publisher, id) FROM "+b.ch.Table("measurements")+" WHERE source = ?",
		fmt.Sprintf("urn:bench-drain-%d", k)).Scan(&d.Rows, &d.Identities)
}

// scrape reads an ingest's metrics as name{labels} -> value.
func scrape(addr string) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, nil
}

// resume times how long storing takes to resume after the writer is
// killed with SIGKILL and started again at once, with a backlog in the
// stream; then, with the last process, the latency at a steady rate.
func (b *bench) resume(ctx context.Context, r *report, at time.Time) error {
	r.ResumeEvents = 2 * b.o.events
	evs := events(r.ResumeEvents, at, 1000)
	for _, e := range evs {
		e.Source = "urn:bench-resume"
	}
	if _, err := publish(ctx, b.js, evs); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	ing, err := b.startIngest()
	if err != nil {
		return err
	}
	defer func() { proc.Stop(ing.cmd) }()
	grows := func(d time.Duration) (time.Duration, error) {
		before, start := rows(ctx, b.ch), time.Now()
		err := proc.WaitFor(d, func() bool { return rows(ctx, b.ch) > before })
		return time.Since(start), err
	}
	for range b.o.kills {
		if _, err := grows(30 * time.Second); err != nil {
			return fmt.Errorf("the ingest is not storing: %w", err)
		}
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		killed := time.Now()
		_ = ing.cmd.Process.Signal(syscall.SIGKILL)
		_ = ing.cmd.Wait()
		if ing, err = b.startIngest(); err != nil {
			return err
		}
		if _, err := grows(30 * time.Second); err != nil {
			return fmt.Errorf("storing did not resume after SIGKILL: %w", err)
		}
		r.ResumeSeconds = append(r.ResumeSeconds, time.Since(killed).Seconds())
		logf("writer killed with SIGKILL and started again; storing resumed %.2f s later", time.Since(killed).Seconds())
	}
	var n, ids uint64
	if err := proc.WaitFor(10*time.Minute, func() bool {
		_ = b.ch.QueryRow(ctx, "SELECT count(), uniqExact(municipality, publisher, id) FROM "+b.ch.Table("measurements")+" WHERE source = 'urn:bench-resume'").Scan(&n, &ids)
		return n >= uint64(len(evs))
	}); err != nil {
		return fmt.Errorf("backlog after the kills: %d of %d stored", n, len(evs))
	}
	time.Sleep(time.Second) // anything stored twice would show by now
	_ = b.ch.QueryRow(ctx, "SELECT count(), uniqExact(municipality, publisher, id) FROM "+b.ch.Table("measurements")+" WHERE source = 'urn:bench-resume'").Scan(&n, &ids)
	r.ResumeExactlyOnce = n == uint64(len(evs)) && ids == n
	p50, p99, pmax, events, err := latency(ctx, b.js, b.ch, b.o.rate, b.o.latency)
	if err != nil {
		return err
	}
	r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs, r.LatencyEvents = p50, p99, pmax, events
	r.PeakRSSMiB = max(r.PeakRSSMiB, proc.Memory(ing.cmd.Process.Pid, "VmHWM"))
	return proc.Stop(ing.cmd)
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
	seen := map[uint64]time.Time{}
	done := make(chan struct{})
	pollErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-done:
				pollErr <- nil
				return
			default:
			}
			rows, err := ch.Query(ctx, "SELECT stream_seq FROM "+ch.Table("measurements")+" WHERE municipality = 'latency'")
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
		_ = ch.QueryRow(ctx, "SELECT count() FROM "+ch.Table("measurements")+" WHERE municipality = 'latency'").Scan(&c)
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
	return q(0.50), q(0.99), slices.Max(lat), len(lat), nil
}

// insertOnly decodes msgs (not timed), then inserts them in batches into
// a fresh database.
func insertOnly(ctx context.Context, addr, db string, msgs []jetstream.Msg, batch int) (float64, error) {
	ch, err := chconn.Open(ctx, chconn.Options{Addr: addr, Database: db, User: "default"})
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	defer ch.Exec(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS `"+db+"`")
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
	s := store.New(ch, maxLateness, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now()
	for i := 0; i < len(rows); i += batch {
		if err := s.Insert(ctx, rows[i:min(i+batch, len(rows))]); err != nil {
			return 0, err
		}
	}
	return float64(len(rows)) / time.Since(start).Seconds(), nil
}
