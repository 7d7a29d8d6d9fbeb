// Command soak runs the local platform as processes (natsd, ingest,
// evaluator) against a fresh ClickHouse database, publishes steady load
// with a share of invalid messages through the simulator's load mode, and
// reports as one JSON object:
//
//   - the ingest and evaluator resident memory after the warm-up and at the
//     end of the load (the highest reading of 30 s each), and the growth
//     between the two;
//   - the end-to-end counts: messages the broker accepted, rows stored in
//     ClickHouse, messages in the dead-letter stream, and lost = accepted -
//     stored - dead-lettered, which must be 0, and rows stored twice, which
//     must be 0 too.
//
// It exits with status 1 when anything was lost or doubled.
//
//	go run ./services/ingest/cmd/soak --duration 10m
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/proc"
)

// memory is a process's resident set: the highest reading (one a second)
// over the 30 s after the warm-up and over the last 30 s of load, so that a
// garbage collector's sawtooth is compared top to top; the growth between
// the two, the peak, and a reading every 10 s.
type memory struct {
	StartMiB  float64   `json:"start_mib"`
	EndMiB    float64   `json:"end_mib"`
	GrowthPct float64   `json:"growth_percent"`
	PeakMiB   float64   `json:"peak_mib"`
	SeriesMiB []float64 `json:"every_10s_mib"`
}

// sampler reads the RSS of some processes once a second.
type sampler struct {
	mu   sync.Mutex
	at   []time.Duration
	mib  [][]float64
	stop chan struct{}
	done chan struct{}
}

func sample(pids ...int) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	t0 := time.Now()
	go func() {
		defer close(s.done)
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
			row := make([]float64, len(pids))
			for i, pid := range pids {
				row[i] = round(proc.Memory(pid, "VmRSS"))
			}
			s.mu.Lock()
			s.at = append(s.at, time.Since(t0))
			s.mib = append(s.mib, row)
			s.mu.Unlock()
		}
	}()
	return s
}

// summary fills m from the readings of process i, for a load that ran
// from 0 to end with the given warm-up.
func (s *sampler) summary(i int, warmup, end time.Duration, m *memory) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first, last []float64
	for j, at := range s.at {
		v := s.mib[j][i]
		switch {
		case at >= warmup && at < warmup+window:
			first = append(first, v)
		case at > end-window && at <= end:
			last = append(last, v)
		}
		if j%10 == 9 {
			m.SeriesMiB = append(m.SeriesMiB, v)
		}
	}
	m.StartMiB, m.EndMiB = slices.Max(append(first, 0)), slices.Max(append(last, 0))
	if m.StartMiB > 0 {
		m.GrowthPct = round((m.EndMiB - m.StartMiB) / m.StartMiB * 100)
	}
}

// window is the span of the start and end memory readings.
const window = 30 * time.Second

type report struct {
	DurationSeconds   float64          `json:"duration_seconds"`
	WarmupSeconds     float64          `json:"warmup_seconds"`
	Rate              int              `json:"rate_events_per_second"`
	InvalidShare      float64          `json:"invalid_share"`
	PublishedAcked    int64            `json:"published_acked"`
	BrokerDuplicates  int64            `json:"broker_duplicates"`
	PublishFailed     int64            `json:"publish_failed"`
	InvalidSent       int64            `json:"invalid_sent"`
	InvalidByReason   map[string]int64 `json:"invalid_by_reason"`
	AckedPerSecond    float64          `json:"publisher_acked_per_second"`
	StreamMessages    uint64           `json:"stream_messages"`
	Stored            uint64           `json:"stored_rows"`
	StoredIdentities  uint64           `json:"stored_identities"`
	DeadLetters       uint64           `json:"dead_letters"`
	Lost              int64            `json:"lost"`
	Doubled           int64            `json:"doubled"`
	DrainSeconds      float64          `json:"drain_seconds_after_load"`
	Ingest            memory           `json:"ingest_rss"`
	Evaluator         memory           `json:"evaluator_rss"`
	ClickHouseVersion string           `json:"clickhouse_version"`
}

func main() {
	addr := flag.String("clickhouse-addr", "127.0.0.1:9000", "ClickHouse native address")
	bin := flag.String("bin", "bin", "folder with natsd, ingest, evaluator and simulator")
	criteria := flag.String("criteria-file", "deploy/evaluator/criteria.yaml", "evaluator criteria file (empty for its defaults)")
	rate := flag.Int("rate", 5000, "events per second")
	invalid := flag.Float64("invalid-share", 0.01, "share of invalid events")
	dur := flag.Duration("duration", 10*time.Minute, "how long to publish")
	warmup := flag.Duration("warmup", 30*time.Second, "load time before the first memory reading")
	flag.Parse()
	if *warmup+2*window > *dur {
		fmt.Fprintln(os.Stderr, "soak: --duration must exceed --warmup by 60s at least")
		os.Exit(2)
	}
	r, err := run(*addr, *bin, *criteria, *rate, *invalid, *dur, *warmup)
	if r != nil {
		out, _ := json.MarshalIndent(r, "", "  ")
		fmt.Println(string(out))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(addr, bin, criteria string, rate int, invalid float64, dur, warmup time.Duration) (*report, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "soak")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	natsAddr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	natsURL := "nats://" + natsAddr
	natsd, err := proc.Start(filepath.Join(bin, "natsd"), "--addr", natsAddr, "--mqtt-addr", "", "--store", filepath.Join(dir, "nats"))
	if err != nil {
		return nil, err
	}
	defer proc.Stop(natsd)
	db := fmt.Sprintf("soak_%d", time.Now().Unix())
	ch, err := chconn.Open(ctx, chconn.Options{Addr: addr, Database: db, User: "default"})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", addr, err)
	}
	defer ch.Close()
	defer ch.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`")
	r := &report{Rate: rate, InvalidShare: invalid, DurationSeconds: dur.Seconds(), WarmupSeconds: warmup.Seconds(),
		ClickHouseVersion: ch.Version.Version.String()}

	ingestHTTP, _ := proc.FreeAddr()
	ingest, err := proc.Start(filepath.Join(bin, "ingest"), "--nats-url", natsURL, "--clickhouse-addr", addr,
		"--clickhouse-database", db, "--http-addr", ingestHTTP, "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	defer proc.Stop(ingest)
	nc, err := nats.Connect(natsURL, nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if err := proc.WaitFor(60*time.Second, func() bool { _, err := js.Consumer(ctx, contract.Stream, "ingest"); return err == nil }); err != nil {
		return nil, fmt.Errorf("ingest did not create its consumer: %w", err)
	}
	evalHTTP, _ := proc.FreeAddr()
	evalArgs := []string{"--nats-url", natsURL, "--clickhouse-addr", addr, "--clickhouse-database", db,
		"--http-addr", evalHTTP, "--evaluation-interval", "10s", "--log-level", "warn"}
	if criteria != "" {
		evalArgs = append(evalArgs, "--criteria-file", criteria)
	}
	eval, err := proc.Start(filepath.Join(bin, "evaluator"), evalArgs...)
	if err != nil {
		return nil, err
	}
	defer proc.Stop(eval)

	pub := exec.Command(filepath.Join(bin, "simulator"), "--nats-url", natsURL, "--mode", "load",
		"--rate", strconv.Itoa(rate), "--invalid-share", strconv.FormatFloat(invalid, 'f', -1, 64),
		"--duration", dur.String(), "--seed", "11", "--log-level", "warn")
	var out bytes.Buffer
	pub.Stdout, pub.Stderr = &out, os.Stderr
	if err := pub.Start(); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	mem := sample(ingest.Process.Pid, eval.Process.Pid)
	loadStart := time.Now()
	if err := pub.Wait(); err != nil {
		return r, fmt.Errorf("simulator: %w", err)
	}
	loadEnd := time.Since(loadStart)
	close(mem.stop)
	<-mem.done
	mem.summary(0, warmup, loadEnd, &r.Ingest)
	mem.summary(1, warmup, loadEnd, &r.Evaluator)

	var counts struct {
		Published       int64            `json:"published"`
		Acked           int64            `json:"acked"`
		Duplicates      int64            `json:"duplicates"`
		Failed          int64            `json:"failed"`
		InvalidSent     int64            `json:"invalid_sent"`
		InvalidByReason map[string]int64 `json:"invalid_by_reason"`
		Rate            float64          `json:"acked_per_second"`
	}
	if err := json.Unmarshal(proc.LastLine(out.Bytes()), &counts); err != nil {
		return r, fmt.Errorf("simulator output %q: %w", out.String(), err)
	}
	r.PublishedAcked, r.BrokerDuplicates, r.PublishFailed = counts.Acked, counts.Duplicates, counts.Failed
	r.InvalidSent, r.InvalidByReason, r.AckedPerSecond = counts.InvalidSent, counts.InvalidByReason, round(counts.Rate)

	// Wait until every message in the stream is stored or dead-lettered, or
	// nothing moved for a minute.
	info := func(name string) uint64 {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return 0
		}
		i, err := s.Info(ctx)
		if err != nil {
			return 0
		}
		return i.State.Msgs
	}
	t0 := time.Now()
	last, lastMove := uint64(0), time.Now()
	for {
		r.StreamMessages = info(contract.Stream)
		r.DeadLetters = info(contract.DeadLetterStream)
		r.Stored = stored(ctx, ch, "count()")
		done := r.Stored + r.DeadLetters
		if done >= r.StreamMessages {
			break
		}
		if done != last {
			last, lastMove = done, time.Now()
		} else if time.Since(lastMove) > time.Minute {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	r.DrainSeconds = round(time.Since(t0).Seconds())
	time.Sleep(2 * time.Second) // a late copy would show now
	r.StreamMessages = info(contract.Stream)
	r.DeadLetters = info(contract.DeadLetterStream)
	r.Stored = stored(ctx, ch, "count()")
	r.StoredIdentities = stored(ctx, ch, "uniqExact(municipality, publisher, id)")
	r.Lost = int64(r.StreamMessages) - int64(r.Stored) - int64(r.DeadLetters)
	r.Doubled = int64(r.Stored) - int64(r.StoredIdentities)
	r.Ingest.PeakMiB, r.Evaluator.PeakMiB = round(proc.Memory(ingest.Process.Pid, "VmHWM")), round(proc.Memory(eval.Process.Pid, "VmHWM"))

	var errs []error
	if accepted := r.PublishedAcked - r.BrokerDuplicates; accepted != int64(r.StreamMessages) {
		errs = append(errs, fmt.Errorf("the publisher had %d messages accepted, the stream holds %d", accepted, r.StreamMessages))
	}
	if r.PublishFailed != 0 {
		errs = append(errs, fmt.Errorf("%d publishes failed", r.PublishFailed))
	}
	if r.Lost != 0 {
		errs = append(errs, fmt.Errorf("%d messages neither stored nor dead-lettered", r.Lost))
	}
	if r.Doubled != 0 {
		errs = append(errs, fmt.Errorf("%d rows stored twice", r.Doubled))
	}
	if r.DeadLetters != uint64(r.InvalidSent) {
		errs = append(errs, fmt.Errorf("%d dead letters for %d invalid messages sent", r.DeadLetters, r.InvalidSent))
	}
	return r, errors.Join(errs...)
}

// stored counts rows of the three event tables with the aggregate agg.
func stored(ctx context.Context, ch *chconn.Conn, agg string) uint64 {
	var n uint64
	q := "SELECT " + agg + " FROM (" + strings.Join([]string{
		"SELECT municipality, publisher, id FROM " + ch.Table("measurements"),
		"SELECT municipality, publisher, id FROM " + ch.Table("catalog"),
		"SELECT municipality, publisher, id FROM " + ch.Table("incidents"),
	}, " UNION ALL ") + ")"
	if err := ch.QueryRow(ctx, q).Scan(&n); err != nil {
		return 0
	}
	return n
}

func round(f float64) float64 { return float64(int64(f*100+0.5*sign(f))) / 100 }

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}
