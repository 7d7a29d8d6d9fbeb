package sim

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
	_ "time/tzdata" // Europe/Madrid for daily patterns, whatever the host has

	"github.com/assoliment/assoliment/services/contract"
)

// DefaultBackfill is the default length of the history before the start.
const DefaultBackfill = 60 * Day

// MaxBackfill keeps every generated event, including the catalogue
// registered before the history, inside the contract's 400-day lateness.
const MaxBackfill = 390 * Day

// establishedAge is how long before the start the long-standing catalogue
// was registered: older than the 90-day adaptation window, so only the
// services and SLAs designed as recent additions count as adaptive.
const establishedAge = 180 * Day

// Options configure a Generator.
type Options struct {
	// Seed makes every random choice; the same seed and Start give
	// byte-identical events.
	Seed int64
	// Start is the instant the history ends and live publishing begins.
	Start time.Time
	// Backfill is the length of the history of measurements and incidents
	// before Start (DefaultBackfill when zero).
	Backfill time.Duration
	// Municipalities to simulate (Designed() when nil).
	Municipalities []Municipality
}

// Generator produces the events of a set of municipalities. It is pure:
// events are computed from the options and the time range asked for.
type Generator struct {
	seed     int64
	start    time.Time
	backfill time.Duration
	munis    []Municipality
	loc      *time.Location
	catalog  []*contract.Event
	regAt    map[string]time.Time // municipality/service -> first registration
}

// New returns a generator.
func New(o Options) (*Generator, error) {
	if o.Backfill == 0 {
		o.Backfill = DefaultBackfill
	}
	if o.Backfill < 0 || o.Backfill > MaxBackfill {
		return nil, fmt.Errorf("backfill %s out of range: must be between 0 and %s", o.Backfill, MaxBackfill)
	}
	if o.Start.IsZero() {
		return nil, fmt.Errorf("start instant is required")
	}
	if o.Municipalities == nil {
		o.Municipalities = Designed()
	}
	loc, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		return nil, fmt.Errorf("load time zone: %w", err)
	}
	g := &Generator{seed: o.Seed, start: o.Start.UTC(), backfill: o.Backfill,
		munis: o.Municipalities, loc: loc, regAt: map[string]time.Time{}}
	if err := g.buildCatalog(); err != nil {
		return nil, err
	}
	return g, nil
}

// Start is the instant the history ends.
func (g *Generator) Start() time.Time { return g.start }

// HistoryStart is the first instant of the history of measurements.
func (g *Generator) HistoryStart() time.Time { return g.start.Add(-g.backfill) }

// Municipalities are the simulated municipalities.
func (g *Generator) Municipalities() []Municipality { return g.munis }

// Catalog returns every service.registered and sla.defined event, sorted by
// time. All of them are earlier than Start.
func (g *Generator) Catalog() []*contract.Event { return slices.Clone(g.catalog) }

// established is when the long-standing catalogue was registered: 09:00 UTC
// of the day establishedAge (or the backfill plus a day, if longer) before
// the start.
func (g *Generator) established() time.Time {
	age := max(establishedAge, g.backfill+Day)
	return g.start.Truncate(Day).Add(-age + 9*time.Hour)
}

func (g *Generator) buildCatalog() error {
	base := g.established()
	day0 := g.start.Truncate(Day)
	for mi := range g.munis {
		m := &g.munis[mi]
		if !contract.ValidSlug(m.ID) {
			return fmt.Errorf("municipality id %q is not a valid slug", m.ID)
		}
		for si := range m.Services {
			s := &m.Services[si]
			at := base.Add(time.Duration(si) * time.Minute)
			if s.AddedDaysAgo > 0 {
				at = day0.Add(-time.Duration(s.AddedDaysAgo)*Day + 10*time.Hour + time.Duration(si)*time.Minute)
			}
			if !at.Before(g.start) {
				return fmt.Errorf("%s/%s: registration %s is not before the start %s", m.ID, s.ID, at, g.start)
			}
			g.regAt[m.ID+"/"+s.ID] = at
			g.catalog = append(g.catalog, g.event(m.ID, contract.Council, contract.TypeServiceRegistered, at, s.ID, "",
				&contract.ServiceRegistered{
					Service: s.ID, Name: s.Name, Area: s.Area, Delivery: s.Delivery, Provider: s.Publisher(),
					ReportingIntervalSeconds: int64(s.Interval / time.Second), OpenData: s.OpenData,
				}))
			for ki := range s.KPIs {
				k := &s.KPIs[ki]
				if k.NoSLA {
					continue
				}
				sat := at.Add(30*time.Second + time.Duration(ki)*time.Second)
				if k.SLAAddedDaysAgo > 0 {
					sat = day0.Add(-time.Duration(k.SLAAddedDaysAgo)*Day + 11*time.Hour + time.Duration(si)*time.Minute)
				}
				g.catalog = append(g.catalog, g.event(m.ID, contract.Council, contract.TypeSLADefined, sat, s.ID, k.ID,
					&contract.SLADefined{
						Service: s.ID, KPI: k.ID, Name: k.Name, Unit: k.Unit, Direction: k.Direction,
						Target: k.Target, Objective: k.Objective,
					}))
			}
		}
	}
	sortEvents(g.catalog)
	return nil
}

// History returns the catalogue followed by every measurement and incident
// of the backfill, in publishing order.
func (g *Generator) History() []*contract.Event {
	out := g.Catalog()
	_ = g.Observations(g.HistoryStart(), g.start, func(e *contract.Event) error {
		out = append(out, e)
		return nil
	})
	return out
}

// Observations calls emit with every measurement and incident event whose
// time is in [from, to) and not before HistoryStart, in time order (ties by
// id), one day at a time. It stops at the first error emit returns.
func (g *Generator) Observations(from, to time.Time, emit func(*contract.Event) error) error {
	if hs := g.HistoryStart(); from.Before(hs) {
		from = hs
	}
	for a := from; a.Before(to); {
		b := a.Truncate(Day).Add(Day)
		if b.After(to) {
			b = to
		}
		chunk := g.chunk(a, b)
		sortEvents(chunk)
		for _, e := range chunk {
			if err := emit(e); err != nil {
				return err
			}
		}
		a = b
	}
	return nil
}

// chunk generates the observations in [a, b) in no particular order.
func (g *Generator) chunk(a, b time.Time) []*contract.Event {
	var out []*contract.Event
	hs := g.HistoryStart()
	for mi := range g.munis {
		m := &g.munis[mi]
		for si := range m.Services {
			s := &m.Services[si]
			if s.Silent {
				continue
			}
			reg := g.regAt[m.ID+"/"+s.ID]
			first := a
			if first.Before(reg) {
				first = reg
			}
			// Measurement slots are aligned to the Unix epoch, so runs with
			// different start instants share ids for the same slot.
			iv := s.Interval
			t := time.Unix(0, (first.UnixNano()+int64(iv)-1)/int64(iv)*int64(iv)).UTC()
			for ; t.Before(b); t = t.Add(iv) {
				if s.GapShare > 0 && g.h(m.ID, s.ID, "gap").int(t.Unix()).unit() < s.GapShare {
					continue
				}
				for ki := range s.KPIs {
					k := &s.KPIs[ki]
					out = append(out, g.event(m.ID, s.Publisher(), contract.TypeKPIMeasured, t, s.ID, k.ID,
						&contract.KPIMeasured{Service: s.ID, KPI: k.ID, Value: g.value(m, s, k, t)}))
				}
			}
			if s.Incidents != nil {
				out = g.incidents(out, m, s, a, b, maxTime(reg, hs))
			}
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Incident is one simulated incident.
type Incident struct {
	ID       string
	Priority string
	Opened   time.Time
	Resolved time.Time
	Target   time.Duration
	Late     bool
}

// incidentAt returns the incident of slot j of a service, if there is one.
func (g *Generator) incidentAt(m *Municipality, s *Service, j int64) (Incident, bool) {
	p := s.Incidents
	h := g.h(m.ID, s.ID, "incident").int(j)
	if h.str("presence").unit() >= p.Presence {
		return Incident{}, false
	}
	period := time.Duration(p.EveryHours) * time.Hour
	opened := time.Unix(0, j*int64(period)).UTC().Add(time.Duration(h.str("jitter").unit() * 0.8 * float64(period))).Truncate(time.Second)
	u := h.str("priority").unit()
	prio := "low"
	switch {
	case u < 0.05:
		prio = "critical"
	case u < 0.25:
		prio = "high"
	case u < 0.65:
		prio = "medium"
	}
	target := time.Duration(resolutionTarget[prio]) * time.Second
	off := int64(g.h(m.ID, s.ID, "late-offset").sum() % uint64(max(p.LateEvery, 1)))
	late := p.LateEvery > 0 && (j+off)%int64(p.LateEvery) == 0
	f := 0.1 + 0.8*h.str("resolution").unit()
	if late {
		f = 1.2 + 1.3*h.str("resolution").unit()
	}
	resolved := opened.Add(time.Duration(f * float64(target))).Truncate(time.Second)
	return Incident{
		ID:       fmt.Sprintf("inc-%s-%d", s.ID, j),
		Priority: prio, Opened: opened, Resolved: resolved, Target: target, Late: late,
	}, true
}

// incidents appends the incident events of s in [a, b) whose incident opened
// at or after notBefore.
func (g *Generator) incidents(out []*contract.Event, m *Municipality, s *Service, a, b, notBefore time.Time) []*contract.Event {
	period := int64(time.Duration(s.Incidents.EveryHours) * time.Hour)
	j0 := a.Add(-maxIncidentSpan).UnixNano()/period - 1
	j1 := b.UnixNano()/period + 1
	pub := s.Publisher()
	for j := j0; j <= j1; j++ {
		inc, ok := g.incidentAt(m, s, j)
		if !ok || inc.Opened.Before(notBefore) {
			continue
		}
		if !inc.Opened.Before(a) && inc.Opened.Before(b) {
			out = append(out, g.event(m.ID, pub, contract.TypeIncidentOpened, inc.Opened, s.ID, inc.ID,
				&contract.IncidentOpened{Service: s.ID, Incident: inc.ID, Priority: inc.Priority,
					ResolutionTargetSeconds: int64(inc.Target / time.Second)}))
		}
		if !inc.Resolved.Before(a) && inc.Resolved.Before(b) {
			out = append(out, g.event(m.ID, pub, contract.TypeIncidentResolved, inc.Resolved, s.ID, inc.ID,
				&contract.IncidentResolved{Service: s.ID, Incident: inc.ID}))
		}
	}
	return out
}

func (g *Generator) h(parts ...string) hasher {
	h := newHasher(g.seed)
	for _, p := range parts {
		h = h.str(p)
	}
	return h
}

// value is the measurement of k at slot t.
func (g *Generator) value(m *Municipality, s *Service, k *KPI, t time.Time) float64 {
	h := g.h(m.ID, s.ID, k.ID).int(t.Unix())
	x := k.Base + k.Spread*shape(k.Shape, t.In(g.loc)) + k.Noise*h.str("noise").gauss()
	fail := h.str("fail").unit() < k.failShare(t)
	higher := k.Direction != contract.LowerIsBetter
	step := math.Pow(10, -float64(k.Decimals))
	if fail {
		depth := math.Max(2*k.Noise, math.Abs(k.Base-k.Target)) * (0.2 + 0.8*h.str("depth").unit())
		depth = math.Max(depth, step)
		if higher {
			x = k.Target - depth
		} else {
			x = k.Target + depth
		}
	} else if !contract.Meets(k.Direction, k.Target, x) {
		x = 2*k.Target - x // reflect into the target
	}
	x = round(math.Min(math.Max(x, k.Min), k.Max), k.Decimals)
	switch meets := contract.Meets(k.Direction, k.Target, x); {
	case !fail && !meets:
		x = k.Target
	case fail && meets && higher:
		x = round(k.Target-step, k.Decimals)
	case fail && meets:
		x = round(k.Target+step, k.Decimals)
	}
	return x
}

func (k *KPI) failShare(t time.Time) float64 {
	if k.Dip.In(t) {
		return k.Dip.FailShare
	}
	return k.FailShare
}

func round(x float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(x*p) / p
}

// shape is a daily pattern in [-1, 1] at local time lt.
func shape(s Shape, lt time.Time) float64 {
	hour := float64(lt.Hour()) + float64(lt.Minute())/60
	weekend := lt.Weekday() == time.Saturday || lt.Weekday() == time.Sunday
	bump := func(centre, width float64) float64 {
		d := (hour - centre) / width
		return math.Exp(-d * d)
	}
	switch s {
	case Rush:
		if weekend {
			return 0
		}
		return -(bump(8, 1) + bump(18, 1.2)) + 0.3
	case Daytime:
		v := 2*bump(13, 4) - 1
		if weekend {
			v = v/2 - 0.5
		}
		return v
	case Demand:
		return bump(8, 1.5) + 0.8*bump(21, 1.5) - 0.4
	}
	return 0
}

// event builds an event with a deterministic id: a hash of the seed, the
// municipality, the publisher, the type, the service, the KPI or incident
// and the time.
func (g *Generator) event(muni, pub, typ string, t time.Time, service, key string, data any) *contract.Event {
	h := g.h(muni, pub, typ, service, key).int(t.UnixNano()).sum()
	prefix := map[string]string{
		contract.TypeServiceRegistered: "svc", contract.TypeSLADefined: "sla",
		contract.TypeKPIMeasured: "m", contract.TypeIncidentOpened: "io", contract.TypeIncidentResolved: "ir",
	}[typ]
	src := "urn:provider:" + pub
	if pub == contract.Council {
		src = "urn:council:" + muni
	}
	return &contract.Event{
		ID:     fmt.Sprintf("sim%d-%s-%016x", g.seed, prefix, h),
		Source: src, Type: typ, Time: t.UTC(), Municipality: muni, Publisher: pub, Data: data,
	}
}

func sortEvents(evs []*contract.Event) {
	slices.SortStableFunc(evs, func(a, b *contract.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Municipality, b.Municipality); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// Generate returns the history of the designed municipalities for seed and
// start: the catalogue, then every measurement and incident of the backfill
// (DefaultBackfill when zero), in publishing order. It is the one-call form
// of New(...).History() for benchmarks and tests in other modules.
func Generate(seed int64, start time.Time, backfill time.Duration) ([]*contract.Event, error) {
	g, err := New(Options{Seed: seed, Start: start, Backfill: backfill})
	if err != nil {
		return nil, err
	}
	return g.History(), nil
}

// Encode renders events as messages ready to publish: subject, id (for
// Nats-Msg-Id) and the CloudEvents JSON bytes.
func Encode(evs []*contract.Event) ([]Message, error) {
	out := make([]Message, len(evs))
	for i, e := range evs {
		b, err := contract.Marshal(e)
		if err != nil {
			return nil, err
		}
		out[i] = Message{Subject: e.Subject(), ID: e.ID, Data: b}
	}
	return out, nil
}
