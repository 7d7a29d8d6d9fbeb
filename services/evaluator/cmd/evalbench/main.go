// Command evalbench measures one full evaluation on a Catalonia-sized data
// set generated inside ClickHouse: municipalities × 20 services × 3 KPIs,
// hourly measurements over 60 days, plus incidents. It prints one JSON line
// per size with the evaluation times and the process's peak RSS.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/evaluator/internal/reader"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/proc"
	"github.com/assoliment/assoliment/services/storage"
)

type result struct {
	Municipalities  int       `json:"municipalities"`
	Measurements    uint64    `json:"measurements"`
	Incidents       uint64    `json:"incident_events"`
	GenerateSeconds float64   `json:"generate_seconds"`
	EvalSeconds     []float64 `json:"evaluation_seconds"`
	BestSeconds     float64   `json:"best_evaluation_seconds"`
	PeakRSSMiB      float64   `json:"evaluator_peak_rss_mib"`
	Levels          [6]int    `json:"municipalities_per_level"`
}

func main() {
	addr := flag.String("clickhouse-addr", "127.0.0.1:9000", "ClickHouse native address")
	sizes := flag.String("municipalities", "237,947", "comma-separated data set sizes (municipalities)")
	days := flag.Int("days", 60, "days of hourly measurements")
	runs := flag.Int("runs", 3, "evaluations per size")
	keep := flag.Bool("keep", false, "keep the generated databases")
	flag.Parse()
	ctx := context.Background()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fail(err)
		}
		r, err := bench(ctx, *addr, n, *days, *runs, *keep)
		if err != nil {
			fail(err)
		}
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "evalbench:", err)
	os.Exit(1)
}

func bench(ctx context.Context, addr string, n, days, runs int, keep bool) (*result, error) {
	db := fmt.Sprintf("bench_eval_%d", n)
	c, err := chconn.Open(ctx, chconn.Options{Addr: addr, Database: db, User: "default"})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if !keep {
		defer c.Exec(context.Background(), "DROP DATABASE IF EXISTS `"+db+"`")
	}
	at := time.Now().UTC().Truncate(time.Hour)
	r := &result{Municipalities: n}
	var have uint64
	_ = c.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = 'measurements'", db).Scan(&have)
	if have == 1 {
		_ = c.QueryRow(ctx, "SELECT count() FROM "+c.Table("measurements")).Scan(&r.Measurements)
	}
	want := uint64(n) * 20 * 3 * uint64(days) * 24
	if r.Measurements != want {
		_ = c.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
		_ = c.Exec(ctx, "CREATE DATABASE `"+db+"`")
		if err := storage.Migrate(ctx, storage.NewConn(c)); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := generate(ctx, c, at, n, days); err != nil {
			return nil, err
		}
		r.GenerateSeconds = time.Since(start).Seconds()
	}
	if err := c.QueryRow(ctx, "SELECT count() FROM "+c.Table("measurements")).Scan(&r.Measurements); err != nil {
		return nil, err
	}
	_ = c.QueryRow(ctx, "SELECT count() FROM "+c.Table("incidents")).Scan(&r.Incidents)
	eng := engine.New(reader.New(storage.NewConn(c)), nil, nil, maturity.DefaultConfig(), slog.New(slog.DiscardHandler))
	for i := 0; i < runs; i++ {
		start := time.Now()
		res, err := eng.Evaluate(ctx, at, "")
		if err != nil {
			return nil, err
		}
		d := time.Since(start).Seconds()
		r.EvalSeconds = append(r.EvalSeconds, d)
		if r.BestSeconds == 0 || d < r.BestSeconds {
			r.BestSeconds = d
		}
		r.Levels = [6]int{}
		for _, x := range res.Results {
			r.Levels[x.Assessment.Level]++
		}
	}
	r.PeakRSSMiB = proc.Memory(0, "VmHWM")
	return r, nil
}

// generate fills the tables with INSERT ... SELECT from numbers(): every
// municipality registers 20 services in 10 areas (half concessions of 4
// providers), 3 SLAs each, hourly measurements of every KPI, and a few
// incidents per service.
func generate(ctx context.Context, c *chconn.Conn, at time.Time, n, days int) error {
	old := at.Add(-200 * 24 * time.Hour).Unix()
	ms := func(format string, args ...any) error {
		q := fmt.Sprintf(format, args...)
		if err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%w\n%s", err, q)
		}
		return nil
	}
	muni := "concat('m-', toString(intDiv(number, %d)))"
	// services: number = m*20 + s
	if err := ms(`INSERT INTO %s (municipality, publisher, id, type, service, kpi, time, time_ms, name, area, delivery, provider,
		reporting_interval_seconds, open_data, unit, direction, target, objective, source, stream_seq, ingested_at, version)
		SELECT %s, 'council', concat('svc-', toString(number)), 'cat.smartcity.service.registered.v1',
			concat('s', toString(number %% 20)), '', toDateTime(%d), 0, concat('Service ', toString(number %% 20)),
			concat('area-', toString(number %% 10)), if(number %% 2 = 0, 'concession', 'own'),
			if(number %% 2 = 0, concat('provider-', toString(number %% 8)), 'council'), 3600, number %% 3 = 0, '', '', 0, 0,
			'urn:bench', number, now(), 0
		FROM numbers(%d)`, c.Table("catalog"), fmt.Sprintf(muni, 20), old, n*20); err != nil {
		return err
	}
	// SLAs: number = (m*20 + s)*3 + k
	if err := ms(`INSERT INTO %s (municipality, publisher, id, type, service, kpi, time, time_ms, name, area, delivery, provider,
		reporting_interval_seconds, open_data, unit, direction, target, objective, source, stream_seq, ingested_at, version)
		SELECT %s, 'council', concat('sla-', toString(number)), 'cat.smartcity.sla.defined.v1',
			concat('s', toString(intDiv(number, 3) %% 20)), concat('k', toString(number %% 3)), toDateTime(%d), 0, 'KPI', '', '', '',
			0, 0, 'ratio', 'higher_is_better', 0.5, 0.9, 'urn:bench', number, now(), 0
		FROM numbers(%d)`, c.Table("catalog"), fmt.Sprintf(muni, 60), old, n*60); err != nil {
		return err
	}
	// Measurements: number = series*hours + h, series = (m*20 + s)*3 + k.
	hours := days * 24
	series := n * 60
	from := at.Add(-time.Duration(hours) * time.Hour).Unix()
	chunk := 1000 // series per insert, to bound server memory
	for s0 := 0; s0 < series; s0 += chunk {
		cnt := min(chunk, series-s0)
		if err := ms(`INSERT INTO %s (municipality, publisher, id, service, kpi, value, time, time_ms, source, stream_seq, ingested_at, version)
			SELECT concat('m-', toString(intDiv(sr, 60))), if(intDiv(sr, 3) %% 2 = 0, concat('provider-', toString(intDiv(sr, 3) %% 8)), 'council'),
				concat('x-', toString(number)), concat('s', toString(intDiv(sr, 3) %% 20)), concat('k', toString(sr %% 3)),
				(cityHash64(number) %% 1000) / 1000 + 0.1 * (sr %% 7 = 0), toDateTime(%d + h * 3600 + 1800), 0, 'urn:bench', number, now(), 0
			FROM (SELECT number, intDiv(number, %d) AS sr, number %% %d AS h FROM numbers(%d, %d))`,
			c.Table("measurements"), from, hours, hours, s0*hours, cnt*hours); err != nil {
			return err
		}
	}
	// Incidents: two per service, opened 1-50 days ago, most resolved in time.
	if err := ms(`INSERT INTO %s (municipality, publisher, id, type, service, incident, priority, resolution_target_seconds, time, time_ms, source, stream_seq, ingested_at, version)
		SELECT %s, if(intDiv(number, 2) %% 2 = 0, concat('provider-', toString(intDiv(number, 2) %% 8)), 'council'),
			concat('io-', toString(number)), 'cat.smartcity.incident.opened.v1', concat('s', toString(intDiv(number, 2) %% 20)),
			concat('inc-', toString(number)), 'high', 14400, toDateTime(%d - (1 + number %% 50) * 86400), 0, 'urn:bench', number, now(), 0
		FROM numbers(%d)`, c.Table("incidents"), fmt.Sprintf(muni, 40), at.Unix(), n*40); err != nil {
		return err
	}
	return ms(`INSERT INTO %s (municipality, publisher, id, type, service, incident, priority, resolution_target_seconds, time, time_ms, source, stream_seq, ingested_at, version)
		SELECT %s, if(intDiv(number, 2) %% 2 = 0, concat('provider-', toString(intDiv(number, 2) %% 8)), 'council'),
			concat('ir-', toString(number)), 'cat.smartcity.incident.resolved.v1', concat('s', toString(intDiv(number, 2) %% 20)),
			concat('inc-', toString(number)), '', 0, toDateTime(%d - (1 + number %% 50) * 86400 + if(number %% 10 = 0, 20000, 3600)), 0, 'urn:bench', number, now(), 0
		FROM numbers(%d)`, c.Table("incidents"), fmt.Sprintf(muni, 40), at.Unix(), n*40)
}
