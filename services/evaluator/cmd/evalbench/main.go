// Command evalbench measures full evaluations on Catalonia-sized data sets
// generated inside ClickHouse: municipalities × 20 services × 3 KPIs,
// hourly measurements over 60 days, incidents; then, on the largest data
// set, with older history stored before the windows (one measurement per
// series and day, and years of incidents), to show that an evaluation does
// not depend on it. Every measurement runs in a child process (evalbench
// evaluate), so its peak RSS is that of the evaluation alone. It prints
// one JSON line per measurement, and with --chart draws the curves.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	osexec "os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/evaluator/internal/reader"
	"github.com/assoliment/assoliment/services/evaluator/service"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/proc"
	"github.com/assoliment/assoliment/services/storage"
)

// result is one measurement: evaluations of one data set by one reader.
type result struct {
	Municipalities int       `json:"municipalities"`
	Measurements   uint64    `json:"measurements"`       // stored in all
	Older          uint64    `json:"older_measurements"` // of which before the windows
	Incidents      uint64    `json:"incident_events"`
	Reader         string    `json:"reader"` // rollups, or raw (event tables only)
	EvalSeconds    []float64 `json:"evaluation_seconds"`
	BestSeconds    float64   `json:"best_evaluation_seconds"`
	// The first evaluation of the process reads everything; the next ones,
	// as the periodic evaluations do, keep the catalogue and the whole
	// days' counts (with the event tables alone, nothing is kept).
	FirstSeconds float64 `json:"first_evaluation_seconds"`
	// The first evaluation of a process when no evaluator has kept the
	// counts of the windows' whole days: on a new database, and (for a
	// running evaluator too) the first evaluation of each day.
	ColdSeconds float64            `json:"first_evaluation_nothing_kept_seconds,omitempty"`
	ColdPhases  map[string]float64 `json:"first_nothing_kept_phases_seconds,omitempty"`
	// The first evaluation of a new day by a running evaluator (T one day
	// on, after the periodic ones): it shifts the whole days' counts it
	// keeps to the new day's windows.
	NewDaySeconds float64            `json:"first_evaluation_of_a_day_seconds,omitempty"`
	NewDayPhases  map[string]float64 `json:"first_of_a_day_phases_seconds,omitempty"`
	NextSeconds   float64            `json:"best_next_evaluation_seconds"`
	PeakRSSMiB    float64            `json:"evaluator_peak_rss_mib"`
	PeakHeapMiB   float64            `json:"evaluator_peak_heap_mib"` // Go heap in use, sampled every 10 ms
	Levels        [6]int             `json:"municipalities_per_level"`
	// Phases of the best evaluation: its statements by what they read,
	// and the rest (rules and Go) as "evaluator".
	Phases map[string]float64 `json:"phases_seconds"`
	// Phases of the first evaluation, named as Phases.
	FirstPhases map[string]float64 `json:"first_phases_seconds"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "evaluate" {
		if err := evaluateMain(os.Args[2:]); err != nil {
			fail(err)
		}
		return
	}
	addr := flag.String("clickhouse-addr", "127.0.0.1:9000", "ClickHouse native address")
	sizes := flag.String("municipalities", "237,474,947", "comma-separated data set sizes (municipalities); the largest also gets the older history")
	days := flag.Int("days", 60, "days of hourly measurements")
	olderRows := flag.String("older", "10000000,100000000", "comma-separated totals of older measurements added, in steps, to the largest data set (empty: none)")
	years := flag.Int("incident-years", 5, "years of older incidents added with the last step")
	runs := flag.Int("runs", 3, "evaluations per measurement")
	raw := flag.Bool("raw", true, "also measure the reader of the event tables alone, on the data sets without older history")
	keep := flag.Bool("keep", false, "keep the generated data sets (and reuse those without older history)")
	chart := flag.String("chart", "", "write the curves to this PNG file")
	inserts := flag.Int("insert-batches", 40, "batches of 5,000 measurements inserted with and without the rollups' view, to measure what it adds to the ingest's inserts (0: skip)")
	flag.Parse()
	ns, err := ints(*sizes)
	if err != nil || len(ns) == 0 {
		fail(fmt.Errorf("--municipalities: comma-separated whole numbers expected: %q", *sizes))
	}
	steps, err := ints(*olderRows)
	if err != nil {
		fail(fmt.Errorf("--older: comma-separated whole numbers expected: %q", *olderRows))
	}
	ctx := context.Background()
	if *inserts > 0 {
		r, err := insertCost(ctx, *addr, *inserts, 5000)
		if err != nil {
			fail(err)
		}
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
	var all []result
	emit := func(r *result) {
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
		all = append(all, *r)
	}
	for i, n := range ns {
		largest := i == len(ns)-1
		db := fmt.Sprintf("bench_eval_%d", n)
		at, err := dataset(ctx, *addr, db, n, *days, *keep && !(largest && len(steps) > 0))
		if err != nil {
			fail(err)
		}
		readers := []string{"rollups"}
		if *raw {
			readers = append(readers, "raw")
		}
		for _, rd := range readers {
			r, err := measure(ctx, *addr, db, at, n, *days, *runs, rd)
			if err != nil {
				fail(err)
			}
			emit(r)
		}
		if largest {
			for j, total := range steps {
				if err := addHistory(ctx, *addr, db, at, n, *days, steps[:j], total, j == len(steps)-1, *years); err != nil {
					fail(err)
				}
				r, err := measure(ctx, *addr, db, at, n, *days, *runs, "rollups")
				if err != nil {
					fail(err)
				}
				emit(r)
			}
		}
		if !*keep || largest && len(steps) > 0 {
			if err := dropDatabase(ctx, *addr, db); err != nil {
				fail(err)
			}
		}
	}
	if *chart != "" {
		if err := writeChart(*chart, all); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "evalbench:", err)
	os.Exit(1)
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func open(ctx context.Context, addr, db string) (*chconn.Conn, error) {
	return chconn.Open(ctx, chconn.Options{Addr: addr, Database: db, User: "default"})
}

func dropDatabase(ctx context.Context, addr, db string) error {
	c, err := open(ctx, addr, db)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
}

func count(ctx context.Context, c *chconn.Conn, sql string) uint64 {
	var n uint64
	_ = c.QueryRow(ctx, sql).Scan(&n)
	return n
}

// dataset generates the data set of n municipalities in db, or reuses it
// when reuse is set and it holds exactly that data set, with rollups that
// cover it. It returns the instant the data set was generated for: the
// last hourly measurement is half an hour before it.
func dataset(ctx context.Context, addr, db string, n, days int, reuse bool) (time.Time, error) {
	c, err := open(ctx, addr, db)
	if err != nil {
		return time.Time{}, err
	}
	defer c.Close()
	want := uint64(n) * seriesPer * uint64(days) * 24
	if reuse && count(ctx, c, "SELECT count() FROM "+c.Table("measurements")) == want &&
		count(ctx, c, "SELECT count() FROM "+c.Table(storage.RollupCoverage)+" WHERE from_day = toDate('1970-01-01')") > 0 {
		var last time.Time
		if err := c.QueryRow(ctx, "SELECT max(time) FROM "+c.Table("measurements")).Scan(&last); err != nil {
			return time.Time{}, err
		}
		// Kept from an earlier run, perhaps of an earlier version.
		if err := storage.Migrate(ctx, storage.NewConn(c)); err != nil {
			return time.Time{}, err
		}
		return last.Add(30 * time.Minute).UTC(), nil
	}
	at := time.Now().UTC().Truncate(time.Hour)
	if err := c.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
		return time.Time{}, err
	}
	if err := c.Exec(ctx, "CREATE DATABASE `"+db+"`"); err != nil {
		return time.Time{}, err
	}
	if err := storage.Migrate(ctx, storage.NewConn(c)); err != nil {
		return time.Time{}, err
	}
	start := time.Now()
	if err := generate(ctx, c, at, n, days); err != nil {
		return time.Time{}, err
	}
	slog.Info("generated", "database", db, "seconds", time.Since(start).Seconds())
	return at, nil
}

// addHistory adds older measurements to db up to total rows (one per
// series and day, going back from the windows' data), after the steps
// already added; with incidents, years of daily incidents too.
func addHistory(ctx context.Context, addr, db string, at time.Time, n, days int, done []int, total int, withIncidents bool, years int) error {
	c, err := open(ctx, addr, db)
	if err != nil {
		return err
	}
	defer c.Close()
	perDay := n * seriesPer
	first := 0
	for _, d := range done {
		first = (d + perDay - 1) / perDay
	}
	last := (total + perDay - 1) / perDay
	start := time.Now()
	if err := older(ctx, c, at, n, days, first, last-first); err != nil {
		return err
	}
	if withIncidents {
		if err := incidents(ctx, c, at, n, 50, years*365-50, "h"); err != nil {
			return err
		}
	}
	slog.Info("older history added", "database", db, "days", last, "seconds", time.Since(start).Seconds())
	return nil
}

// measure runs the evaluations of db at T in a child process and
// describes the data set.
func measure(ctx context.Context, addr, db string, at time.Time, n, days, runs int, rd string) (*result, error) {
	c, err := open(ctx, addr, db)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// The rows just generated are merged first, as a server that has held
	// them for a while has merged them.
	if waited, err := c.WaitNoMerges(ctx, 15*time.Minute); err != nil {
		return nil, err
	} else if waited > 2*time.Second {
		slog.Info("waited for the server's background merges", "database", db, "seconds", waited.Seconds())
	}
	// T cuts an hour and a day anywhere, as the evaluator's clock does.
	t := at.Add(17*time.Minute + 23*time.Second + 456789)
	run := func(extra ...string) (*result, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		args := append([]string{"evaluate", "--clickhouse-addr", addr, "--database", db,
			"--at", t.Format(time.RFC3339Nano), "--runs", strconv.Itoa(runs), "--reader", rd}, extra...)
		cmd := osexec.CommandContext(ctx, exe, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", db, err)
		}
		r := &result{}
		if err := json.Unmarshal(out.Bytes(), r); err != nil {
			return nil, fmt.Errorf("evaluate %s: %w: %q", db, err, out.String())
		}
		return r, nil
	}
	var r *result
	if rd == "raw" {
		if r, err = run(); err != nil {
			return nil, err
		}
	} else {
		// With nothing kept (a new database; the first evaluation of a
		// day), then as a restarted evaluator finds it.
		if err := c.Exec(ctx, "TRUNCATE TABLE "+c.Table(storage.WholeDayCounts)); err != nil {
			return nil, err
		}
		cold, err := run()
		if err != nil {
			return nil, err
		}
		if r, err = run("--next-day"); err != nil {
			return nil, err
		}
		r.ColdSeconds, r.ColdPhases = cold.FirstSeconds, cold.FirstPhases
		r.PeakRSSMiB, r.PeakHeapMiB = max(r.PeakRSSMiB, cold.PeakRSSMiB), max(r.PeakHeapMiB, cold.PeakHeapMiB)
	}
	r.Municipalities, r.Reader = n, rd
	r.Measurements = count(ctx, c, "SELECT count() FROM "+c.Table("measurements"))
	r.Older = r.Measurements - uint64(n)*seriesPer*uint64(days)*24
	r.Incidents = count(ctx, c, "SELECT count() FROM "+c.Table("incidents"))
	return r, nil
}

// evaluateMain is the child: it evaluates every municipality runs times
// and prints the times, the levels and its peak RSS.
func evaluateMain(args []string) error {
	fs := flag.NewFlagSet("evaluate", flag.ExitOnError)
	addr := fs.String("clickhouse-addr", "127.0.0.1:9000", "ClickHouse native address")
	db := fs.String("database", "", "database")
	atFlag := fs.String("at", "", "T, RFC 3339")
	runs := fs.Int("runs", 3, "evaluations")
	rd := fs.String("reader", "rollups", "rollups or raw")
	cpu := fs.String("cpuprofile", "", "write a CPU profile of the evaluations to this file")
	mem := fs.String("memprofile", "", "write a heap profile (allocations) after the evaluations to this file")
	nextDay := fs.Bool("next-day", false, "after the runs, evaluate once more at T + 24 h (the first evaluation of a day)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	at, err := time.Parse(time.RFC3339Nano, *atFlag)
	if err != nil {
		return fmt.Errorf("--at: %w", err)
	}
	if os.Getenv("GOMEMLIMIT") == "" { // as the evaluator runs
		debug.SetMemoryLimit(service.MemoryLimit)
	}
	ctx := context.Background()
	c, err := open(ctx, *addr, *db)
	if err != nil {
		return err
	}
	defer c.Close()
	var opts []reader.Option
	if *rd == "raw" {
		opts = append(opts, reader.Raw())
	}
	timedDB := &timed{Engine: storage.NewConn(c), phases: map[string]time.Duration{}}
	eng := engine.New(reader.New(timedDB, opts...), nil, nil, maturity.DefaultConfig(), slog.New(slog.DiscardHandler))
	r := &result{}
	stop := sampleHeap(&r.PeakHeapMiB)
	defer stop()
	for range *runs {
		start := time.Now()
		res, err := eng.Evaluate(ctx, at, "")
		if err != nil {
			return err
		}
		d := time.Since(start).Seconds()
		phases := timedDB.take()
		if len(r.EvalSeconds) == 0 {
			r.FirstSeconds, r.FirstPhases = d, phaseSeconds(d, phases)
		} else if r.NextSeconds == 0 || d < r.NextSeconds {
			r.NextSeconds = d
		}
		r.EvalSeconds = append(r.EvalSeconds, d)
		if r.BestSeconds == 0 || d < r.BestSeconds {
			r.BestSeconds, r.Phases = d, phaseSeconds(d, phases)
		}
		r.Levels = [6]int{}
		for _, x := range res.Results {
			r.Levels[x.Assessment.Level]++
		}
	}
	if *nextDay {
		start := time.Now()
		if _, err := eng.Evaluate(ctx, at.Add(24*time.Hour), ""); err != nil {
			return err
		}
		r.NewDaySeconds = time.Since(start).Seconds()
		r.NewDayPhases = phaseSeconds(r.NewDaySeconds, timedDB.take())
	}
	stop()
	r.PeakRSSMiB = proc.Memory(0, "VmHWM")
	if *mem != "" {
		f, err := os.Create(*mem)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// phaseSeconds are the phases of an evaluation of d seconds, with the
// rest (rules and Go) as "evaluator".
func phaseSeconds(d float64, phases map[string]time.Duration) map[string]float64 {
	out := map[string]float64{"evaluator": d}
	for p, x := range phases {
		out[p] = x.Seconds()
		out["evaluator"] -= x.Seconds()
	}
	return out
}

// sampleHeap records in peak the largest Go heap in use, sampled every
// 10 ms, until stop is called (more than once is fine).
func sampleHeap(peak *float64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var m runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			*peak = max(*peak, float64(m.HeapInuse)/(1<<20))
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}
