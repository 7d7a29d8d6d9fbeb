package report_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/apiv1"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/evaluator/internal/reader"
	"github.com/assoliment/assoliment/services/evaluator/internal/report"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/simulator/sim"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

var madrid = mustZone(report.DefaultTimeZone)

func mustZone(name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return l
}

func database(t *testing.T) storage.Engine {
	t.Helper()
	db := storage.NewConn(testenv.ClickHouse(t))
	if err := storage.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// evaluatorSLAs is the evaluator's own verdict on every SLA of m for the
// window [from, to): the reader and the rules the service runs, at T = to
// with W = to - from and the report's min_samples.
func evaluatorSLAs(t *testing.T, db storage.Engine, m string, from, to time.Time, minSamples int) map[string]maturity.SLAResult {
	t.Helper()
	cfg := maturity.DefaultConfig()
	cfg.Window, cfg.MinSamples = to.Sub(from), minSamples
	in, err := reader.New(storagetest.Audited(t, db, storage.EvaluatorAccess)).Read(context.Background(), to.UTC(), cfg.Window, m)
	if err != nil {
		t.Fatal(err)
	}
	x, ok := in.Municipalities[m]
	if !ok {
		t.Fatalf("%s unknown to the evaluator at %s", m, to)
	}
	a := maturity.Evaluate(cfg, x.Input)
	out := map[string]maturity.SLAResult{}
	for _, s := range a.SLAs {
		out[s.Service+"/"+s.KPI] = s
	}
	return out
}

// sameAsEvaluator fails unless every SLA of the report has the samples,
// compliance, objective and verdict the evaluator computes for the same
// interval, and the report has every SLA the evaluator has.
func sameAsEvaluator(t *testing.T, db storage.Engine, r *apiv1.Report) int {
	t.Helper()
	want := evaluatorSLAs(t, db, r.Municipality, r.From, r.To, r.MinSamples)
	n := 0
	for _, p := range r.Providers {
		for _, s := range p.SLAs {
			n++
			k := s.Service + "/" + s.KPI
			e, ok := want[k]
			if !ok {
				t.Errorf("%s %s: %s is in the report, not in the evaluation", r.Municipality, r.Month, k)
				continue
			}
			delete(want, k)
			if s.Samples != e.SamplesC || s.Met != e.Met || s.Objective != e.Objective || s.Target != e.Target ||
				(s.Compliance == nil) != (e.Compliance == nil) || s.Compliance != nil && *s.Compliance != *e.Compliance {
				t.Errorf("%s %s %s: report samples %d compliance %s met %v objective %v; evaluator %d %s %v %v",
					r.Municipality, r.Month, k, s.Samples, ratio(s.Compliance), s.Met, s.Objective, e.SamplesC, ratio(e.Compliance), e.Met, e.Objective)
			}
			days := 0
			for _, d := range s.Days {
				days += d.Samples
			}
			if days != s.Samples {
				t.Errorf("%s %s %s: days add up to %d samples, the month has %d", r.Municipality, r.Month, k, days, s.Samples)
			}
		}
	}
	for k := range want {
		t.Errorf("%s %s: %s is in the evaluation, not in the report", r.Municipality, r.Month, k)
	}
	return n
}

func ratio(p *float64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// TestMatchesEvaluatorOnSimulatedHistory stores the simulator's designed
// municipalities (60 days of history up to 20 November 2026) and compares
// every SLA of every municipality with the evaluator's own computation
// for October 2026 in Europe/Madrid (from 1 October 00:00 +02:00 to 1
// November 00:00 +01:00: 31 days, the 25th lasting 25 hours), and for
// November cut at the end of the history.
func TestMatchesEvaluatorOnSimulatedHistory(t *testing.T) {
	end := time.Date(2026, 11, 20, 18, 45, 30, 0, time.UTC)
	g, err := sim.New(sim.Options{Seed: 7, Start: end})
	if err != nil {
		t.Fatal(err)
	}
	db := database(t)
	storagetest.Store(t, db, g.History()...)
	b := report.New(storagetest.Audited(t, db, storage.EvaluatorAccess), madrid, maturity.DefaultConfig().MinSamples)
	slas, measured, breaches := 0, 0, 0
	for _, m := range g.Municipalities() {
		for _, month := range []report.Month{{Year: 2026, Month: time.October}, {Year: 2026, Month: time.November}} {
			r, ok, err := b.Build(context.Background(), m.ID, month, end)
			if err != nil || !ok {
				t.Fatalf("%s %s: %v, found %v", m.ID, month, err, ok)
			}
			if r.Complete != (month.Month == time.October) || len(r.Providers) == 0 {
				t.Errorf("%s %s: complete %v, %d providers", m.ID, month, r.Complete, len(r.Providers))
			}
			if month.Month == time.October && (len(r.Providers[0].SLAs[0].Days) != 31 || r.To.Sub(r.From) != 31*24*time.Hour+time.Hour) {
				t.Errorf("%s October: %d days from %s to %s", m.ID, len(r.Providers[0].SLAs[0].Days), r.From, r.To)
			}
			slas += sameAsEvaluator(t, db, r)
			for _, p := range r.Providers {
				for _, s := range p.SLAs {
					if s.Measured {
						measured++
					}
					breaches += len(s.BreachDays)
				}
			}
		}
	}
	if measured == 0 || breaches == 0 {
		t.Errorf("%d SLAs, %d measured, %d breach days: the comparison proves little", slas, measured, breaches)
	}
	t.Logf("%d municipalities, %d SLA-months compared (%d measured, %d breach days)", len(g.Municipalities()), slas, measured, breaches)
}

var ev = storagetest.Event

func register(m, service, name, provider string, at time.Time) *contract.Event {
	delivery := contract.DeliveryConcession
	if provider == contract.Council {
		delivery = contract.DeliveryOwn
	}
	return ev(m, contract.Council, at, &contract.ServiceRegistered{Service: service, Name: name, Area: "area-" + service,
		Delivery: delivery, Provider: provider, ReportingIntervalSeconds: 900})
}

func defineSLA(m, service, kpi, direction string, target, objective float64, at time.Time) *contract.Event {
	return ev(m, contract.Council, at, &contract.SLADefined{Service: service, KPI: kpi, Name: "SLA " + kpi, Unit: "u",
		Direction: direction, Target: target, Objective: objective})
}

func measure(m, publisher, service, kpi string, at time.Time, v float64) *contract.Event {
	return ev(m, publisher, at, &contract.KPIMeasured{Service: service, KPI: kpi, Value: v})
}

// TestEdgesOfTheMonth: measurements 1 ns either side of the month's edges
// in Europe/Madrid and of the midnights around the change to summer time
// (29 March 2026, a day of 23 hours) land in their day or outside the
// month; an SLA redefined during the month judges the whole month with its
// new target and objective, one redefined at the first instant of the next
// month does not; a provider replaced during the month counts
// for the whole month and the old one no longer does; an intruder never
// counts; a service retired during the month is listed, not judged; and
// every figure equals the evaluator's.
func TestEdgesOfTheMonth(t *testing.T) {
	db := database(t)
	m := "vila"
	month := report.Month{Year: 2026, Month: time.March}
	from, end := month.Start(madrid), month.End(madrid)
	if from.Format(time.RFC3339) != "2026-03-01T00:00:00+01:00" || end.Format(time.RFC3339) != "2026-04-01T00:00:00+02:00" {
		t.Fatalf("March 2026 in Madrid: %s to %s", from, end)
	}
	at := func(s string) time.Time {
		x, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	old := at("2025-06-01T00:00:00Z")
	evs := []*contract.Event{
		register(m, "aigua", "Aigua", "aigues", old),
		defineSLA(m, "aigua", "pressio", contract.HigherIsBetter, 2, 0.95, old),
		// Redefined on the 10th: target 2.5 and objective 0.5 judge the whole month.
		defineSLA(m, "aigua", "pressio", contract.HigherIsBetter, 2.5, 0.5, at("2026-03-10T12:00:00+01:00")),
		register(m, "bus", "Bus", "moventis", old),
		defineSLA(m, "bus", "puntualitat", contract.HigherIsBetter, 0.9, 0.9, old),
		register(m, "bus", "Bus", "sagales", at("2026-03-15T00:00:00+01:00")), // a new provider
		register(m, "vell", "Servei vell", "antic", old),
		defineSLA(m, "vell", "k", contract.LowerIsBetter, 1, 0.9, old),
		ev(m, contract.Council, at("2026-03-20T10:00:00+01:00"), &contract.ServiceRetired{Service: "vell"}),
		register(m, "oac", "Oficina", contract.Council, old),
		defineSLA(m, "oac", "espera", contract.LowerIsBetter, 15, 0.9, old),
	}
	edges := []string{
		"2026-02-28T23:59:59.999999999+01:00", // before the month
		"2026-03-01T00:00:00+01:00",           // day 1
		"2026-03-28T23:59:59.999999999+01:00", // day 28
		"2026-03-29T00:00:00+01:00",           // day 29, 23 hours long
		"2026-03-29T01:59:59.999999999+01:00", // day 29, just before the clocks go forward
		"2026-03-29T03:00:00+02:00",           // day 29, just after
		"2026-03-29T23:59:59.999999999+02:00", // day 29
		"2026-03-30T00:00:00+02:00",           // day 30
		"2026-03-31T23:59:59.999999999+02:00", // day 31
		"2026-04-01T00:00:00+02:00",           // after the month
	}
	for i, e := range edges {
		x := at(e)
		v := 2.0 + float64(i%2) // 3 meets 2.5, 2 does not
		evs = append(evs,
			measure(m, "aigues", "aigua", "pressio", x, v),
			measure(m, contract.Council, "aigua", "pressio", x, v),
			measure(m, "intrus", "aigua", "pressio", x, 3),
			measure(m, "moventis", "bus", "puntualitat", x, 1), // the old provider: never counted
			measure(m, "sagales", "bus", "puntualitat", x, 0.95),
			measure(m, "antic", "vell", "k", x, 0),
			measure(m, contract.Council, "oac", "espera", x, 10*v))
	}
	storagetest.Store(t, db, evs...)
	b := report.New(storagetest.Audited(t, db, storage.EvaluatorAccess), madrid, 3)
	r, ok, err := b.Build(context.Background(), m, month, at("2026-06-01T00:00:00Z"))
	if err != nil || !ok {
		t.Fatalf("%v, found %v", err, ok)
	}
	if !r.Complete || !r.From.Equal(from) || !r.To.Equal(end) || r.TimeZone != "Europe/Madrid" || r.Month != "2026-03" {
		t.Errorf("period: %+v", r)
	}
	sameAsEvaluator(t, db, r)
	byKey := map[string]apiv1.ReportSLA{}
	var providers []string
	for _, p := range r.Providers {
		providers = append(providers, p.Provider+"/"+p.Delivery)
		for _, s := range p.SLAs {
			byKey[s.Service+"/"+s.KPI] = s
		}
	}
	if fmt.Sprint(providers) != "[aigues/concession sagales/concession council/own]" {
		t.Errorf("providers %v", providers)
	}
	w := byKey["aigua/pressio"]
	if w.Target != 2.5 || w.Objective != 0.5 || !w.DefinedAt.Equal(at("2026-03-10T12:00:00+01:00")) {
		t.Errorf("aigua/pressio is not the definition in force at the end of the month: %+v", w)
	}
	// Provider and council, eight edges inside the month each.
	perDay := map[string]int{}
	for _, d := range w.Days {
		if d.Samples > 0 {
			perDay[d.Date] = d.Samples
		}
	}
	if fmt.Sprint(perDay) != "map[2026-03-01:2 2026-03-28:2 2026-03-29:8 2026-03-30:2 2026-03-31:2]" || w.Samples != 16 || len(w.Days) != 31 {
		t.Errorf("aigua/pressio per day %v, %d samples over %d days", perDay, w.Samples, len(w.Days))
	}
	// On the 29th 00:00 and 03:00 meet the target, 01:59 and 23:59 do
	// not: 4 of 8, and 0.5 >= 0.5 is no breach; on the 28th and the 31st
	// none meets it.
	if fmt.Sprint(w.BreachDays) != "[2026-03-28 2026-03-31]" || !w.Met || *w.Compliance != 0.5 {
		t.Errorf("aigua/pressio: breach days %v, met %v, compliance %v", w.BreachDays, w.Met, ratio(w.Compliance))
	}
	if bus := byKey["bus/puntualitat"]; bus.Samples != 8 || !bus.Met {
		t.Errorf("bus/puntualitat: the new provider counts for the whole month, the old one not: %+v", bus)
	}
	if _, ok := byKey["vell/k"]; ok {
		t.Error("a service retired during the month is judged")
	}
	if len(r.RetiredServices) != 1 || r.RetiredServices[0].Service != "vell" || r.RetiredServices[0].Provider != "antic" ||
		!r.RetiredServices[0].RetiredAt.Equal(at("2026-03-20T10:00:00+01:00")) {
		t.Errorf("retired services: %+v", r.RetiredServices)
	}

	// Redefined at the first instant of April: that definition belongs to
	// April, and March is still judged with the one of the 10th (an
	// evaluation at T = 1 April 00:00 would take it as in force at T).
	storagetest.Store(t, db, defineSLA(m, "aigua", "pressio", contract.HigherIsBetter, 9, 0.99, end))
	if r, _, err := b.Build(context.Background(), m, month, end); err != nil || r.Providers[0].SLAs[0].Target != 2.5 {
		t.Errorf("a definition at the first instant of the next month judges the month: %v %+v", err, r.Providers[0].SLAs[0])
	}

	// Unknown municipalities, and one whose council spoke only at the end of the month.
	if _, ok, err := b.Build(context.Background(), "enlloc", month, end); err != nil || ok {
		t.Errorf("unknown municipality: found %v, %v", ok, err)
	}
	storagetest.Store(t, db, register("nova", "x", "X", contract.Council, end))
	if _, ok, err := b.Build(context.Background(), "nova", month, end.Add(time.Hour)); err != nil || ok {
		t.Errorf("municipality known only after the month: found %v, %v", ok, err)
	}
	// The current month is cut at the clock, and compared on the same cut.
	now := at("2026-03-29T03:00:00+02:00")
	r, ok, err = b.Build(context.Background(), m, month, now)
	if err != nil || !ok || r.Complete || !r.To.Equal(now) || len(r.Providers[0].SLAs[0].Days) != 29 {
		t.Fatalf("current month: %v %v %+v", err, ok, r)
	}
	sameAsEvaluator(t, db, r)
}
