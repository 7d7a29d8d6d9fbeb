// Package report builds a municipality's monthly SLA report, what a
// council's contract manager needs to apply a concession contract: every
// SLA of every provider over one calendar month of the municipality's time
// zone, with its samples, compliance, objective, verdict and breach days,
// and writes it as JSON, CSV or a printable HTML page.
//
// The month is judged as the evaluator judges a window: the catalogue, the
// SLAs and the publisher rule are those in force at the end of the period
// T (reader.BuildCatalogue, during its last nanosecond: an event at T
// belongs to the next month), and the samples are the counted
// measurements in [start of the month, T), so the month's compliance of
// an SLA equals what an evaluation at T with a window as long as the month
// computes.
// The days come from one query (storage.CountDays) whose calendar is
// computed here, in Go, in the configured time zone.
package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
	_ "time/tzdata" // the report's time zone without the system's zone files

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/apiv1"
	"github.com/assoliment/assoliment/services/evaluator/internal/reader"
	"github.com/assoliment/assoliment/services/storage"
)

// DefaultTimeZone is the time zone of the contract periods unless a
// deployment sets another.
const DefaultTimeZone = "Europe/Madrid"

// Builder builds reports from one database.
type Builder struct {
	db         storage.Engine
	loc        *time.Location
	minSamples int
}

// New returns a builder on db whose months are those of loc and whose
// SLAs are measured with at least minSamples samples in the month.
func New(db storage.Engine, loc *time.Location, minSamples int) *Builder {
	return &Builder{db: db, loc: loc, minSamples: minSamples}
}

// Location is the time zone of the months.
func (b *Builder) Location() *time.Location { return b.loc }

// Build reports on municipality for month, cut at now when the month has
// not ended. found is false when the municipality is not known at the end
// of the period.
func (b *Builder) Build(ctx context.Context, municipality string, month Month, now time.Time) (r *apiv1.Report, found bool, err error) {
	from, end := month.Start(b.loc), month.End(b.loc)
	to := end
	if now.Before(end) {
		to = now.In(b.loc)
	}
	if !to.After(from) {
		return nil, false, fmt.Errorf("month %s has not started at %s", month, now.Format(time.RFC3339))
	}
	var rows []storage.CatalogueRow
	if err := b.db.Select(ctx, &rows, storage.CatalogueUpTo(to, municipality)); err != nil {
		return nil, false, fmt.Errorf("read catalogue: %w", err)
	}
	// The catalogue in force during the last instant of the period: an
	// event at To belongs to the next month.
	last := to.Add(-time.Nanosecond)
	cat := reader.BuildCatalogue(rows, last)
	if !cat.Known[municipality] {
		return nil, false, nil
	}
	days := month.Days(b.loc, to)
	counts, err := b.countDays(ctx, municipality, cat, days, to)
	if err != nil {
		return nil, false, err
	}
	r = &apiv1.Report{
		Municipality: municipality, Month: month.String(), TimeZone: b.loc.String(),
		From: from, To: to, Complete: to.Equal(end), MinSamples: b.minSamples,
		Providers:       b.providers(municipality, cat, definitions(rows, last), days, counts),
		RetiredServices: retired(rows, municipality, from, last),
	}
	return r, true, nil
}

// countDays reads the counted samples of every SLA in force per day:
// only the SLA's series from the service's provider at T and from the
// council are asked for, and the publisher rule is checked again on what
// comes back.
func (b *Builder) countDays(ctx context.Context, m string, cat *reader.Catalogue, days []time.Time, to time.Time) (map[slaKey][]storage.DayCounts, error) {
	var targets []storage.Target
	for k, s := range cat.SLAs[m] {
		provider, _ := cat.Provider(m, k.Service)
		for _, p := range publishers(provider) {
			targets = append(targets, storage.Target{Series: storage.Series{Municipality: m, Service: k.Service, KPI: k.KPI, Publisher: p},
				LowerIsBetter: s.Direction == contract.LowerIsBetter, Target: s.Target})
		}
	}
	out := map[slaKey][]storage.DayCounts{}
	if len(targets) == 0 || len(days) == 0 {
		return out, nil
	}
	var pending []storage.Count
	if err := b.db.Select(ctx, &pending, storage.PendingDuplicates()); err != nil {
		return nil, fmt.Errorf("read duplicates: %w", err)
	}
	final := len(pending) == 1 && pending[0].N > 0
	var rows []storage.DayCounts
	if err := b.db.Select(ctx, &rows, storage.CountDays(m, targets, days, to, final)); err != nil {
		return nil, fmt.Errorf("count samples per day: %w", err)
	}
	for _, r := range rows {
		if !cat.Counted(m, r.Service, r.Publisher) || r.Day < 1 || int(r.Day) > len(days) {
			continue
		}
		k := slaKey{r.Service, r.KPI}
		out[k] = append(out[k], r)
	}
	return out, nil
}

type slaKey struct{ service, kpi string }

// publishers are who count for a service of provider p: p and the council.
func publishers(p string) []string {
	if p == contract.Council {
		return []string{p}
	}
	return []string{p, contract.Council}
}

// providers judges every SLA in force and groups them by the provider of
// their service: concession providers by id, then council.
func (b *Builder) providers(m string, cat *reader.Catalogue, defined map[slaKey]time.Time, days []time.Time,
	counts map[slaKey][]storage.DayCounts) []apiv1.ReportProvider {
	byProvider := map[string]*apiv1.ReportProvider{}
	for k, s := range cat.SLAs[m] {
		svc := cat.Services[m][k.Service]
		key := slaKey{k.Service, k.KPI}
		r := apiv1.ReportSLA{
			Service: s.Service, ServiceName: svc.Name, Area: svc.Area, KPI: s.KPI, Name: s.Name, Unit: s.Unit,
			Direction: s.Direction, Target: s.Target, Objective: s.Objective, DefinedAt: defined[key].In(b.loc),
			BreachDays: []string{}, Days: make([]apiv1.ReportDay, len(days)),
		}
		for i, d := range days {
			r.Days[i].Date = d.Format(time.DateOnly)
		}
		for _, c := range counts[key] {
			d := &r.Days[c.Day-1]
			d.Samples += int(c.Samples)
			d.Meeting += int(c.Meeting)
		}
		for i := range r.Days {
			d := &r.Days[i]
			r.Samples += d.Samples
			r.Meeting += d.Meeting
			if d.Samples > 0 {
				d.Compliance = new(float64(d.Meeting) / float64(d.Samples))
				if d.Breach = *d.Compliance < r.Objective; d.Breach {
					r.BreachDays = append(r.BreachDays, d.Date)
				}
			}
		}
		r.Measured = r.Samples >= b.minSamples && r.Samples > 0
		if r.Measured {
			r.Compliance = new(float64(r.Meeting) / float64(r.Samples))
			r.Met = *r.Compliance >= r.Objective
		}
		p := byProvider[svc.Provider]
		if p == nil {
			delivery := contract.DeliveryConcession
			if svc.Provider == contract.Council {
				delivery = contract.DeliveryOwn
			}
			p = &apiv1.ReportProvider{Provider: svc.Provider, Delivery: delivery}
			byProvider[svc.Provider] = p
		}
		switch {
		case r.Met:
			p.Met++
		case r.Measured:
			p.NotMet++
		default:
			p.NotMeasured++
		}
		p.SLAs = append(p.SLAs, r)
	}
	out := make([]apiv1.ReportProvider, 0, len(byProvider))
	for _, p := range byProvider {
		slices.SortFunc(p.SLAs, func(a, b apiv1.ReportSLA) int {
			return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.KPI, b.KPI))
		})
		out = append(out, *p)
	}
	councilLast := func(p string) int {
		if p == contract.Council {
			return 1
		}
		return 0
	}
	slices.SortFunc(out, func(a, b apiv1.ReportProvider) int {
		return cmp.Or(cmp.Compare(councilLast(a.Provider), councilLast(b.Provider)), cmp.Compare(a.Provider, b.Provider))
	})
	return out
}

// definitions are the event times of the SLA definitions in force at T:
// per (service, kpi) the latest sla.defined at or before T, ties broken by
// arrival, as reader.BuildCatalogue chooses them.
func definitions(rows []storage.CatalogueRow, at time.Time) map[slaKey]time.Time {
	best := map[slaKey]*storage.CatalogueRow{}
	for i := range rows {
		x := &rows[i]
		if x.Type != contract.TypeSLADefined || x.Time > at.UnixNano() {
			continue
		}
		k := slaKey{x.Service, x.KPI}
		if cur := best[k]; cur == nil || x.Time > cur.Time || x.Time == cur.Time && x.Seq > cur.Seq {
			best[k] = x
		}
	}
	out := make(map[slaKey]time.Time, len(best))
	for k, x := range best {
		out[k] = time.Unix(0, x.Time)
	}
	return out
}

// retired lists the services catalogued at some instant of [from, last]
// — at from, or registered after it — that are no longer catalogued at
// last, sorted by id, each with its latest retirement.
func retired(rows []storage.CatalogueRow, m string, from, last time.Time) []apiv1.RetiredService {
	atStart, atEnd := reader.BuildCatalogue(rows, from), reader.BuildCatalogue(rows, last)
	during := map[string]bool{}
	for id := range atStart.Services[m] {
		during[id] = true
	}
	registration := map[string]*storage.CatalogueRow{}
	for i := range rows {
		x := &rows[i]
		if x.Municipality != m || x.Time > last.UnixNano() {
			continue
		}
		switch x.Type {
		case contract.TypeServiceRegistered:
			if x.Time > from.UnixNano() {
				during[x.Service] = true
			}
			if cur := registration[x.Service]; cur == nil || x.Time > cur.Time || x.Time == cur.Time && x.Seq > cur.Seq {
				registration[x.Service] = x
			}
		}
	}
	out := []apiv1.RetiredService{}
	for id := range during {
		if _, still := atEnd.Services[m][id]; still {
			continue
		}
		r := apiv1.RetiredService{Service: id}
		if reg := registration[id]; reg != nil {
			r.Name, r.Provider = reg.Name, reg.Provider
		}
		for i := range rows {
			x := &rows[i]
			if x.Municipality == m && x.Service == id && x.Type == contract.TypeServiceRetired && x.Time <= last.UnixNano() {
				if t := time.Unix(0, x.Time).In(last.Location()); t.After(r.RetiredAt) {
					r.RetiredAt = t
				}
			}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b apiv1.RetiredService) int { return cmp.Compare(a.Service, b.Service) })
	return out
}
