// Package reader turns what ClickHouse holds into the plain inputs of the
// maturity rules: the catalogue and SLAs in force at T, counted measurements
// aggregated per window, and counted incidents. Heavy aggregation runs in
// SQL (deduplicated with FINAL); the rules of who counts are applied here,
// in Go, so they are tested without a database.
package reader

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/platform/chconn"
)

// ShortWindows are the recent windows of business time for which SLA
// compliance is also computed (error-budget burn alerts).
var ShortWindows = []struct {
	Label string
	D     time.Duration
}{{"1h", time.Hour}, {"6h", 6 * time.Hour}, {"1d", 24 * time.Hour}, {"3d", 72 * time.Hour}}

// SLAKey names one SLA.
type SLAKey struct{ Service, KPI string }

// Municipality is everything read for one municipality at T.
type Municipality struct {
	Input maturity.Input
	// Short holds, per SLA and short window label, counted samples and how
	// many meet the target; absent when no samples.
	Short map[SLAKey]map[string]maturity.WindowStats
	// Unattributed counts measurements in C not counted because their
	// publisher is neither the service's provider nor the council, or the
	// service is not catalogued at T.
	Unattributed int
}

// Reader reads one database.
type Reader struct {
	c     *chconn.Conn
	mu    sync.Mutex
	munis map[uint64]string // municipality hashes seen, with their names
}

// New returns a reader on c.
func New(c *chconn.Conn) *Reader { return &Reader{c: c, munis: map[uint64]string{}} }

// DropLeftovers drops the SLA target tables an evaluator that stopped in the
// middle of an evaluation left behind. Run it at start.
func (r *Reader) DropLeftovers(ctx context.Context) error {
	rows, err := r.c.Query(ctx, "SELECT name FROM system.tables WHERE database = ? AND name LIKE 'sla_targets_%'", r.c.Database)
	if err != nil {
		return fmt.Errorf("list leftover tables: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return fmt.Errorf("list leftover tables: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	for _, n := range names {
		if err := r.c.Exec(ctx, "DROP TABLE IF EXISTS "+r.c.Table(n)); err != nil {
			return fmt.Errorf("drop leftover table %s: %w", n, err)
		}
	}
	return rows.Err()
}

// Read returns the inputs of every known municipality at T (only of the
// named one when municipality is not empty), for windows of length w.
func (r *Reader) Read(ctx context.Context, at time.Time, w time.Duration, municipality string) (map[string]*Municipality, error) {
	cat, err := r.catalog(ctx, at, municipality)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Municipality)
	get := func(m string) *Municipality {
		x := out[m]
		if x == nil {
			x = &Municipality{Input: maturity.Input{Municipality: m, At: at}, Short: map[SLAKey]map[string]maturity.WindowStats{}}
			out[m] = x
		}
		return x
	}
	for m := range cat.known {
		get(m)
	}
	svc, slas, err := r.measurements(ctx, at, w, municipality, cat)
	if err != nil {
		return nil, err
	}
	for m := range svc.known {
		get(m)
	}
	incs, err := r.incidents(ctx, at, municipality, cat)
	if err != nil {
		return nil, err
	}
	for m, x := range out {
		in := &x.Input
		for id, s := range cat.services[m] {
			s.MeasurementsC = svc.countC[m][id]
			s.LastMeasurement = svc.last[m][id]
			in.Services = append(in.Services, *s)
		}
		sort.Slice(in.Services, func(i, j int) bool { return in.Services[i].ID < in.Services[j].ID })
		for k, s := range cat.slas[m] {
			st := slas.stats[m][k]
			s.C, s.P = st.c, st.p
			in.SLAs = append(in.SLAs, *s)
			if len(st.short) > 0 {
				x.Short[k] = st.short
			}
		}
		sort.Slice(in.SLAs, func(i, j int) bool {
			a, b := in.SLAs[i], in.SLAs[j]
			return a.Service < b.Service || a.Service == b.Service && a.KPI < b.KPI
		})
		in.Incidents = incs[m]
		x.Unattributed = svc.unattributed[m]
	}
	return out, nil
}

// ms is an instant as milliseconds since the epoch, the precision of stored
// event times (time + time_ms).
func ms(t time.Time) int64 { return t.UnixMilli() }

const eventMS = "toInt64(toUInt32(time)) * 1000 + time_ms"

// catalogue is the catalogue and SLAs in force at T.
type catalogue struct {
	known    map[string]bool
	services map[string]map[string]*maturity.Service // municipality -> service
	slas     map[string]map[SLAKey]*maturity.SLA
}

// provider returns who may report for a catalogued service, and whether it
// is catalogued.
func (c *catalogue) provider(m, service string) (string, bool) {
	s, ok := c.services[m][service]
	if !ok {
		return "", false
	}
	return s.Provider, true
}

// counted applies the publisher rule of maturity.md.
func (c *catalogue) counted(m, service, publisher string) bool {
	p, ok := c.provider(m, service)
	return ok && (publisher == p || publisher == contract.Council)
}

type catRow struct {
	municipality, typ, service, kpi string
	t                               int64
	seq                             uint64
	name, area, delivery, provider  string
	interval                        uint32
	open                            uint8
	unit, direction                 string
	target, objective               float64
}

// after orders catalogue events by event time, then arrival.
func (a *catRow) after(b *catRow) bool { return a.t > b.t || a.t == b.t && a.seq > b.seq }

func (r *Reader) catalog(ctx context.Context, at time.Time, municipality string) (*catalogue, error) {
	q := fmt.Sprintf(`SELECT municipality, type, service, kpi, %s AS t, stream_seq, name, area, delivery, provider,
		reporting_interval_seconds, open_data, unit, direction, target, objective
		FROM %s FINAL WHERE (? = '' OR municipality = ?)`, eventMS, r.c.Table("catalog"))
	rows, err := r.c.Query(ctx, q, municipality, municipality)
	if err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	defer rows.Close()
	c := &catalogue{known: map[string]bool{}, services: map[string]map[string]*maturity.Service{}, slas: map[string]map[SLAKey]*maturity.SLA{}}
	type svcKey struct{ m, s string }
	type slaKey struct {
		m string
		k SLAKey
	}
	reg, ret := map[svcKey]*catRow{}, map[svcKey]*catRow{}
	firstReg := map[svcKey]int64{}
	def := map[slaKey]*catRow{}
	firstDef := map[slaKey]int64{}
	limit := ms(at)
	for rows.Next() {
		x := &catRow{}
		if err := rows.Scan(&x.municipality, &x.typ, &x.service, &x.kpi, &x.t, &x.seq, &x.name, &x.area, &x.delivery,
			&x.provider, &x.interval, &x.open, &x.unit, &x.direction, &x.target, &x.objective); err != nil {
			return nil, fmt.Errorf("read catalogue: %w", err)
		}
		c.known[x.municipality] = true
		if x.t > limit { // not yet happened at T
			continue
		}
		sk := svcKey{x.municipality, x.service}
		switch x.typ {
		case contract.TypeServiceRegistered:
			if cur := reg[sk]; cur == nil || x.after(cur) {
				reg[sk] = x
			}
			if f, ok := firstReg[sk]; !ok || x.t < f {
				firstReg[sk] = x.t
			}
		case contract.TypeServiceRetired:
			if cur := ret[sk]; cur == nil || x.after(cur) {
				ret[sk] = x
			}
		case contract.TypeSLADefined:
			k := slaKey{x.municipality, SLAKey{x.service, x.kpi}}
			if cur := def[k]; cur == nil || x.after(cur) {
				def[k] = x
			}
			if f, ok := firstDef[k]; !ok || x.t < f {
				firstDef[k] = x.t
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read catalogue: %w", err)
	}
	for sk, x := range reg {
		if rt := ret[sk]; rt != nil && rt.t > x.t { // retired later than its latest registration
			continue
		}
		if c.services[sk.m] == nil {
			c.services[sk.m] = map[string]*maturity.Service{}
		}
		c.services[sk.m][sk.s] = &maturity.Service{
			ID: x.service, Name: x.name, Area: x.area, Delivery: x.delivery, Provider: x.provider,
			ReportingInterval: time.Duration(x.interval) * time.Second, OpenData: x.open == 1,
			FirstRegistered: time.UnixMilli(firstReg[sk]).UTC(),
		}
	}
	for k, x := range def {
		if _, ok := c.services[k.m][k.k.Service]; !ok {
			continue
		}
		if c.slas[k.m] == nil {
			c.slas[k.m] = map[SLAKey]*maturity.SLA{}
		}
		c.slas[k.m][k.k] = &maturity.SLA{
			Service: x.service, KPI: x.kpi, Name: x.name, Unit: x.unit, Direction: x.direction,
			Target: x.target, Objective: x.objective, FirstDefined: time.UnixMilli(firstDef[k]).UTC(),
		}
	}
	return c, nil
}

type serviceStats struct {
	known        map[string]bool
	countC       map[string]map[string]int
	last         map[string]map[string]time.Time
	unattributed map[string]int
}

type slaStat struct {
	c, p  maturity.WindowStats
	short map[string]maturity.WindowStats
}

type slaStats struct {
	stats map[string]map[SLAKey]*slaStat
}

// duplicatesPending reports whether some measurement identity is known to
// be stored twice and not merged yet; reads then deduplicate with FINAL.
func (r *Reader) duplicatesPending(ctx context.Context) (bool, error) {
	var n uint64
	err := r.c.QueryRow(ctx, fmt.Sprintf("SELECT countIf(resolved = 0) FROM %s FINAL", r.c.Table("duplicates"))).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read duplicates: %w", err)
	}
	return n > 0, nil
}

// measurements aggregates every KPI series of every publisher (the series
// column): one pass over the last 2W for samples in C and P and the latest
// time, one over the last days for the short windows; each counts how many
// samples meet the target of the SLA in force at T (looked up with joinGet
// in a Join table filled for this evaluation). Who counts is decided here,
// in Go.
func (r *Reader) measurements(ctx context.Context, at time.Time, w time.Duration, municipality string, cat *catalogue) (*serviceStats, *slaStats, error) {
	st := &serviceStats{known: map[string]bool{}, countC: map[string]map[string]int{},
		last: map[string]map[string]time.Time{}, unattributed: map[string]int{}}
	out := &slaStats{stats: map[string]map[SLAKey]*slaStat{}}
	targets, err := r.targets(ctx, cat, out)
	if err != nil {
		return nil, nil, err
	}
	defer r.c.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+r.c.Table(targets))
	final := ""
	if dup, err := r.duplicatesPending(ctx); err != nil {
		return nil, nil, err
	} else if dup {
		final = " FINAL"
	}
	nm, err := r.names(ctx, cat)
	if err != nil {
		return nil, nil, err
	}
	from, cStart, to := ms(at.Add(-2*w)), ms(at.Add(-w)), ms(at)
	type group struct {
		series, sseries, mseries uint64
		v                        []uint64
		last                     int64
	}
	scan := func(from int64, sel string, each func(g *group)) error {
		filter := ""
		args := []any{from / 1000, to / 1000}
		if municipality != "" {
			filter, args = " AND municipality = ?", append(args, municipality)
		}
		q := fmt.Sprintf(`SELECT series, any(sseries), any(mseries), %s, max(t)
			FROM (
				SELECT series, sseries, mseries, %s AS t,
					value * joinGet('%s', 'sign', series) >= joinGet('%s', 'bound', series) AS ok
				FROM %s%s
				WHERE time >= toDateTime(?) AND time <= toDateTime(?)%s
			)
			WHERE t >= ? AND t < ?
			GROUP BY series`, sel, eventMS, targets, targets, r.c.Table("measurements"), final, filter)
		rows, err := r.c.Query(ctx, q, append(args, from, to)...)
		if err != nil {
			return fmt.Errorf("read measurements: %w", err)
		}
		defer rows.Close()
		n := strings.Count(sel, "),") + 1
		for rows.Next() {
			g := &group{v: make([]uint64, n)}
			dst := []any{&g.series, &g.sseries, &g.mseries}
			for i := range g.v {
				dst = append(dst, &g.v[i])
			}
			if err := rows.Scan(append(dst, &g.last)...); err != nil {
				return fmt.Errorf("read measurements: %w", err)
			}
			each(g)
		}
		return rows.Err()
	}
	var unknown []uint64 // municipalities of uncounted series not in the catalogue
	uncounted := map[uint64]int{}
	// C and P over the last 2W.
	err = scan(from, fmt.Sprintf("countIf(t >= %d), toUInt64(sumIf(ok, t >= %d)), countIf(t < %d), toUInt64(sumIf(ok, t < %d))", cStart, cStart, cStart, cStart),
		func(g *group) {
			v := g.v
			n, isSLA := nm.series[g.series]
			if !isSLA {
				var counted bool
				if n, counted = nm.service[g.sseries]; !counted {
					if _, ok := uncounted[g.mseries]; !ok && r.municipality(g.mseries) == "" {
						unknown = append(unknown, g.mseries)
					}
					uncounted[g.mseries] += int(v[0])
					return
				}
			}
			m, s := n.m, n.s
			st.known[m] = true
			if st.countC[m] == nil {
				st.countC[m], st.last[m] = map[string]int{}, map[string]time.Time{}
			}
			st.countC[m][s] += int(v[0])
			if t := time.UnixMilli(g.last).UTC(); t.After(st.last[m][s]) {
				st.last[m][s] = t
			}
			if sla := out.stats[m][SLAKey{s, n.k}]; isSLA && sla != nil {
				sla.c.Samples += int(v[0])
				sla.c.Meeting += int(v[1])
				sla.p.Samples += int(v[2])
				sla.p.Meeting += int(v[3])
			}
		})
	if err != nil {
		return nil, nil, err
	}
	if err := r.learnMunicipalities(ctx, unknown, from); err != nil {
		return nil, nil, err
	}
	for h, c := range uncounted {
		if m := r.municipality(h); m != "" {
			st.known[m] = true
			st.unattributed[m] += c
		}
	}
	// The short windows, over the few most recent days only.
	var sel []string
	oldest := to
	for _, sw := range ShortWindows {
		s := ms(at.Add(-sw.D))
		sel = append(sel, fmt.Sprintf("countIf(t >= %d), toUInt64(sumIf(ok, t >= %d))", s, s))
		oldest = min(oldest, s)
	}
	err = scan(oldest, strings.Join(sel, ", "), func(g *group) {
		n, ok := nm.series[g.series]
		if !ok {
			return
		}
		sla := out.stats[n.m][SLAKey{n.s, n.k}]
		if sla == nil {
			return
		}
		for i, sw := range ShortWindows {
			if g.v[2*i] > 0 {
				cur := sla.short[sw.Label]
				cur.Samples += int(g.v[2*i])
				cur.Meeting += int(g.v[2*i+1])
				sla.short[sw.Label] = cur
			}
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return st, out, r.olderLast(ctx, at, from, cat, st)
}

// seriesName is what a hash of the measurements table stands for.
type seriesName struct{ m, s, k, p string }

// hashNames maps the hashes of counted series back to names: series of the
// SLAs in force, and services, each for their provider and the council.
type hashNames struct {
	series  map[uint64]seriesName
	service map[uint64]seriesName
}

// names asks the server for the hashes (the same cityHash64 as the
// materialized columns) of every counted SLA series and service, and of
// every municipality in the catalogue.
func (r *Reader) names(ctx context.Context, cat *catalogue) (*hashNames, error) {
	out := &hashNames{series: map[uint64]seriesName{}, service: map[uint64]seriesName{}}
	slas, err := ext.NewTable("sla_names", ext.Column("m", column.Type("String")), ext.Column("s", column.Type("String")),
		ext.Column("k", column.Type("String")), ext.Column("p", column.Type("String")))
	if err != nil {
		return nil, err
	}
	svcs, err := ext.NewTable("svc_names", ext.Column("m", column.Type("String")), ext.Column("s", column.Type("String")),
		ext.Column("p", column.Type("String")))
	if err != nil {
		return nil, err
	}
	munis, err := ext.NewTable("muni_names", ext.Column("m", column.Type("String")))
	if err != nil {
		return nil, err
	}
	for m := range cat.known {
		if err := munis.Append(m); err != nil {
			return nil, err
		}
	}
	for m, ss := range cat.services {
		for id, s := range ss {
			for _, p := range []string{s.Provider, contract.Council} {
				if err := svcs.Append(m, id, p); err != nil {
					return nil, err
				}
			}
		}
	}
	for m, ks := range cat.slas {
		for k := range ks {
			provider, _ := cat.provider(m, k.Service)
			for _, p := range []string{provider, contract.Council} {
				if err := slas.Append(m, k.Service, k.KPI, p); err != nil {
					return nil, err
				}
			}
		}
	}
	rows, err := r.c.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(slas, svcs, munis)), `
		SELECT toUInt8(1), cityHash64(m, s, k, p), m, s, k, p FROM sla_names
		UNION ALL SELECT toUInt8(2), cityHash64(m, s, p), m, s, '', p FROM svc_names
		UNION ALL SELECT toUInt8(3), cityHash64(m), m, '', '', '' FROM muni_names`)
	if err != nil {
		return nil, fmt.Errorf("hash names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind uint8
		var h uint64
		var n seriesName
		if err := rows.Scan(&kind, &h, &n.m, &n.s, &n.k, &n.p); err != nil {
			return nil, fmt.Errorf("hash names: %w", err)
		}
		switch kind {
		case 1:
			out.series[h] = n
		case 2:
			out.service[h] = n
		case 3:
			r.learn(h, n.m)
		}
	}
	return out, rows.Err()
}

// municipality returns the name of a municipality hash seen before.
func (r *Reader) municipality(h uint64) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.munis[h]
}

func (r *Reader) learn(h uint64, m string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.munis[h] = m
}

// learnMunicipalities finds the names of municipality hashes that are not in
// the catalogue (measurements from municipalities without one); names are
// kept, so this costs a scan only the first time.
func (r *Reader) learnMunicipalities(ctx context.Context, hashes []uint64, from int64) error {
	if len(hashes) == 0 {
		return nil
	}
	list := make([]string, len(hashes))
	for i, h := range hashes {
		list[i] = strconv.FormatUint(h, 10)
	}
	q := fmt.Sprintf("SELECT mseries, any(municipality) FROM %s WHERE mseries IN (%s) AND time >= toDateTime(?) GROUP BY mseries",
		r.c.Table("measurements"), strings.Join(list, ", "))
	rows, err := r.c.Query(ctx, q, from/1000)
	if err != nil {
		return fmt.Errorf("municipality names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h uint64
		var m string
		if err := rows.Scan(&h, &m); err != nil {
			return fmt.Errorf("municipality names: %w", err)
		}
		r.learn(h, m)
	}
	return rows.Err()
}

// targets creates a Join table keyed by the series of every SLA in force at
// T (for its provider and for the council) that holds sign and bound such
// that a value meets the target when value*sign >= bound (sign -1 for
// lower_is_better), and prepares the per-SLA stats. It returns the table's
// name.
func (r *Reader) targets(ctx context.Context, cat *catalogue, out *slaStats) (string, error) {
	name := fmt.Sprintf("sla_targets_%d_%d", time.Now().UnixNano(), rand.Uint32())
	if err := r.c.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (series UInt64, sign Float64, bound Float64) ENGINE = Join(ANY, LEFT, series)",
		r.c.Table(name))); err != nil {
		return "", fmt.Errorf("create SLA targets: %w", err)
	}
	tbl, err := ext.NewTable("slas",
		ext.Column("municipality", column.Type("String")), ext.Column("service", column.Type("String")),
		ext.Column("kpi", column.Type("String")), ext.Column("publisher", column.Type("String")),
		ext.Column("lower", column.Type("UInt8")), ext.Column("target", column.Type("Float64")))
	if err != nil {
		return name, err
	}
	n := 0
	for m, ks := range cat.slas {
		for k, s := range ks {
			if out.stats[m] == nil {
				out.stats[m] = map[SLAKey]*slaStat{}
			}
			out.stats[m][k] = &slaStat{short: map[string]maturity.WindowStats{}}
			lower := uint8(0)
			if s.Direction == contract.LowerIsBetter {
				lower = 1
			}
			provider, _ := cat.provider(m, k.Service)
			for _, p := range []string{provider, contract.Council} {
				if err := tbl.Append(m, k.Service, k.KPI, p, lower, s.Target); err != nil {
					return name, err
				}
				n++
			}
		}
	}
	if n == 0 {
		return name, nil
	}
	err = r.c.Exec(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), fmt.Sprintf(
		"INSERT INTO %s SELECT cityHash64(municipality, service, kpi, publisher), if(lower = 1, -1, 1), if(lower = 1, -target, target) FROM slas",
		r.c.Table(name)))
	if err != nil {
		return name, fmt.Errorf("fill SLA targets: %w", err)
	}
	return name, nil
}

// olderLast finds the latest measurement before 2W ago of catalogued
// services that have none since.
func (r *Reader) olderLast(ctx context.Context, at time.Time, before int64, cat *catalogue, st *serviceStats) error {
	tbl, err := ext.NewTable("missing",
		ext.Column("municipality", column.Type("String")), ext.Column("service", column.Type("String")),
		ext.Column("publisher", column.Type("String")))
	if err != nil {
		return err
	}
	n := 0
	for m, ss := range cat.services {
		for id, s := range ss {
			if _, ok := st.last[m][id]; ok {
				continue
			}
			for _, p := range []string{s.Provider, contract.Council} {
				if err := tbl.Append(m, id, p); err != nil {
					return err
				}
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	q := fmt.Sprintf(`SELECT municipality, service, max(%s) AS last FROM %s
		WHERE time <= toDateTime(?) AND (municipality, service, publisher) IN (SELECT municipality, service, publisher FROM missing)
		GROUP BY municipality, service HAVING last < ?`, eventMS, r.c.Table("measurements"))
	rows, err := r.c.Query(clickhouse.Context(ctx, clickhouse.WithExternalTable(tbl)), q, before/1000, before)
	if err != nil {
		return fmt.Errorf("read older measurements: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m, s string
		var last int64
		if err := rows.Scan(&m, &s, &last); err != nil {
			return fmt.Errorf("read older measurements: %w", err)
		}
		if st.last[m] == nil {
			st.countC[m], st.last[m] = map[string]int{}, map[string]time.Time{}
		}
		st.last[m][s] = time.UnixMilli(last).UTC()
	}
	return rows.Err()
}

type incRow struct {
	publisher, typ, service, incident, priority string
	target                                      uint32
	t                                           int64
}

// incidents returns the counted incidents opened before T, per municipality.
func (r *Reader) incidents(ctx context.Context, at time.Time, municipality string, cat *catalogue) (map[string][]maturity.Incident, error) {
	q := fmt.Sprintf(`SELECT municipality, publisher, type, service, incident, priority, resolution_target_seconds, %s AS t
		FROM %s FINAL WHERE time <= toDateTime(?) AND (? = '' OR municipality = ?)`, eventMS, r.c.Table("incidents"))
	rows, err := r.c.Query(ctx, q, ms(at)/1000, municipality, municipality)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	type key struct{ m, id string }
	opened := map[key]*incRow{}
	resolved := map[key]int64{}
	limit := ms(at)
	for rows.Next() {
		var m string
		x := &incRow{}
		if err := rows.Scan(&m, &x.publisher, &x.typ, &x.service, &x.incident, &x.priority, &x.target, &x.t); err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		if x.t >= limit || !cat.counted(m, x.service, x.publisher) {
			continue
		}
		k := key{m, x.incident}
		switch x.typ {
		case contract.TypeIncidentOpened:
			if cur := opened[k]; cur == nil || x.t < cur.t {
				opened[k] = x
			}
		case contract.TypeIncidentResolved:
			if cur, ok := resolved[k]; !ok || x.t < cur {
				resolved[k] = x.t
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	out := map[string][]maturity.Incident{}
	for k, x := range opened {
		in := maturity.Incident{Service: x.service, ID: x.incident, Priority: x.priority,
			OpenedAt: time.UnixMilli(x.t).UTC(), Deadline: time.UnixMilli(x.t + int64(x.target)*1000).UTC()}
		if rt, ok := resolved[k]; ok {
			in.ResolvedAt = time.UnixMilli(rt).UTC()
		}
		out[k.m] = append(out[k.m], in)
	}
	for _, l := range out {
		sort.Slice(l, func(i, j int) bool { return l[i].ID < l[j].ID })
	}
	return out, nil
}
