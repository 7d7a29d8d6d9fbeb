package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

// LoadMunicipalities are real Catalan municipality ids used by load mode.
var LoadMunicipalities = []string{
	"barcelona", "l-hospitalet-de-llobregat", "badalona", "terrassa", "sabadell", "lleida",
	"tarragona", "mataro", "santa-coloma-de-gramenet", "reus", "girona", "sant-cugat-del-valles",
	"cornella-de-llobregat", "sant-boi-de-llobregat", "rubi", "manresa", "vilanova-i-la-geltru",
	"viladecans", "castelldefels", "el-prat-de-llobregat", "granollers", "cerdanyola-del-valles",
	"sant-adria-de-besos", "mollet-del-valles", "esplugues-de-llobregat", "gava", "figueres", "vic",
	"sant-feliu-de-llobregat", "igualada", "blanes", "lloret-de-mar", "vilafranca-del-penedes",
	"el-vendrell", "olot", "ripollet", "salt", "sant-joan-despi", "tortosa", "cambrils",
	"premia-de-mar", "montcada-i-reixac", "vila-seca", "sitges", "martorell", "banyoles", "calafell",
	"palafrugell", "tremp", "berga", "puigcerda", "la-seu-d-urgell", "solsona", "balaguer", "tarrega",
	"valls", "amposta", "falset", "mora-d-ebre", "ripoll", "sort", "vielha-e-mijaran",
}

// LoadMunicipalityIDs returns n municipality ids: the real names first, then
// the same names with a numeric suffix.
func LoadMunicipalityIDs(n int) []string {
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		id := LoadMunicipalities[i%len(LoadMunicipalities)]
		if r := i / len(LoadMunicipalities); r > 0 {
			id = fmt.Sprintf("%s-%d", id, r+1)
		}
		out = append(out, id)
	}
	return out
}

// Message is an encoded message ready to publish.
type Message struct {
	Subject string
	ID      string // for the Nats-Msg-Id header
	Data    []byte
	// Invalid is the reason the platform must reject the message for, or ""
	// for a valid one.
	Invalid contract.Reason
}

// LoadOptions configure a Load.
type LoadOptions struct {
	Seed int64
	// Municipalities is how many municipalities the load is spread over
	// (default 10).
	Municipalities int
	// InvalidShare is the share of messages that are invalid, in [0, 1]:
	// exactly floor(n * share) of the first n messages are, cycling through
	// contract.Reasons.
	InvalidShare float64
	// RunID is part of every id, so that runs do not collide with each
	// other in the broker's duplicate window or the platform's identities.
	RunID string
}

// stream is one (municipality, service, KPI) that load measurements go to.
type stream struct {
	muni    string
	service *Service
	kpi     *KPI
}

// Load generates load-mode messages: index i always gives the same message
// for the same options and clock reading.
type Load struct {
	o       LoadOptions
	ppm     int64
	munis   []Municipality
	streams []stream
	g       *Generator
}

// NewLoad returns a load generator. Each municipality takes the reporting
// services of one of the designed municipalities, in turn.
func NewLoad(o LoadOptions) (*Load, error) {
	if o.Municipalities <= 0 {
		o.Municipalities = 10
	}
	if !(o.InvalidShare >= 0 && o.InvalidShare <= 1) {
		return nil, fmt.Errorf("invalid share %v: must be between 0 and 1", o.InvalidShare)
	}
	if o.RunID == "" {
		o.RunID = "0"
	}
	if !contract.ValidToken(o.RunID) {
		return nil, fmt.Errorf("run id %q: must match %s", o.RunID, "[a-z0-9][a-z0-9_-]*")
	}
	var templates []Municipality
	for _, m := range Designed() {
		var svcs []Service
		for _, s := range m.Services {
			if !s.Silent {
				s.AddedDaysAgo = 0
				svcs = append(svcs, s)
			}
		}
		if len(svcs) > 0 {
			m.Services = svcs
			templates = append(templates, m)
		}
	}
	l := &Load{o: o, ppm: int64(o.InvalidShare*1e6 + 0.5)}
	for i, id := range LoadMunicipalityIDs(o.Municipalities) {
		m := templates[i%len(templates)]
		m.ID, m.Name = id, id
		l.munis = append(l.munis, m)
	}
	for mi := range l.munis {
		m := &l.munis[mi]
		for si := range m.Services {
			for ki := range m.Services[si].KPIs {
				l.streams = append(l.streams, stream{muni: m.ID, service: &m.Services[si], kpi: &m.Services[si].KPIs[ki]})
			}
		}
	}
	// The generator is used for values and event building only.
	g, err := New(Options{Seed: o.Seed, Start: time.Unix(0, 0).Add(MaxBackfill), Municipalities: l.munis})
	if err != nil {
		return nil, err
	}
	l.g = g
	return l, nil
}

// Municipalities are the load municipalities with their catalogues.
func (l *Load) Municipalities() []Municipality { return l.munis }

func (l *Load) id(kind string, i int64) string {
	return fmt.Sprintf("ld%d-%s-%s%d", l.o.Seed, l.o.RunID, kind, i)
}

// Catalog returns the registrations and SLAs of the load municipalities,
// dated an hour before now; publish them before the load messages.
func (l *Load) Catalog(now time.Time) []Message {
	var out []Message
	at := now.Add(-time.Hour).UTC().Truncate(time.Second)
	for _, e := range l.g.Catalog() {
		e.Time = at
		e.ID = l.id("c", int64(len(out)))
		out = append(out, mustMessage(e, ""))
	}
	return out
}

// IsInvalid reports whether message i is one of the invalid ones, and its
// rank among them.
func (l *Load) IsInvalid(i int64) (rank int64, invalid bool) {
	a, b := i*l.ppm/1e6, (i+1)*l.ppm/1e6
	return a, b > a
}

// Event returns the valid event of index i at clock reading now: mostly
// measurements, and every 20th an incident opened or resolved.
func (l *Load) Event(i int64, now time.Time) *contract.Event {
	st := l.streams[i%int64(len(l.streams))]
	now = now.UTC()
	m := &Municipality{ID: st.muni}
	pub := st.service.Publisher()
	var e *contract.Event
	switch {
	case st.service.Incidents != nil && i%20 == 10:
		inc := fmt.Sprintf("ld-%s-%d", l.o.RunID, i/40)
		e = l.g.event(st.muni, pub, contract.TypeIncidentOpened, now, st.service.ID, inc,
			&contract.IncidentOpened{Service: st.service.ID, Incident: inc, Priority: contract.Priorities[i%4], ResolutionTargetSeconds: 14400})
	case st.service.Incidents != nil && i%20 == 0:
		inc := fmt.Sprintf("ld-%s-%d", l.o.RunID, i/40)
		e = l.g.event(st.muni, pub, contract.TypeIncidentResolved, now, st.service.ID, inc,
			&contract.IncidentResolved{Service: st.service.ID, Incident: inc})
	default:
		e = l.g.event(st.muni, pub, contract.TypeKPIMeasured, now, st.service.ID, st.kpi.ID,
			&contract.KPIMeasured{Service: st.service.ID, KPI: st.kpi.ID, Value: l.g.value(m, st.service, st.kpi, now.Add(time.Duration(i%3600)*time.Second))})
	}
	e.ID = l.id("e", i)
	return e
}

// Message returns message i at clock reading now: the valid Event, or, for
// the indices IsInvalid picks, a message broken for one reason of
// contract.Reasons in turn.
func (l *Load) Message(i int64, now time.Time) Message {
	e := l.Event(i, now)
	rank, bad := l.IsInvalid(i)
	if !bad {
		return mustMessage(e, "")
	}
	reason := contract.Reasons[rank%int64(len(contract.Reasons))]
	return Invalid(e, reason, now)
}

func mustMessage(e *contract.Event, reason contract.Reason) Message {
	b, err := contract.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("marshal generated event: %v", err))
	}
	return Message{Subject: e.Subject(), ID: e.ID, Data: b, Invalid: reason}
}

// Invalid breaks a valid event so that the platform rejects it for reason,
// judged at clock reading now.
func Invalid(e *contract.Event, reason contract.Reason, now time.Time) Message {
	m := mustMessage(e, reason)
	edit := func(fn func(env map[string]any)) {
		var env map[string]any
		d := json.NewDecoder(bytes.NewReader(m.Data))
		d.UseNumber()
		if err := d.Decode(&env); err != nil {
			panic(err)
		}
		fn(env)
		b, err := json.Marshal(env)
		if err != nil {
			panic(err)
		}
		m.Data = b
	}
	switch reason {
	case contract.ReasonTooLarge:
		edit(func(env map[string]any) { env["padding"] = strings.Repeat("x", contract.MaxMessageSize) })
	case contract.ReasonMalformedJSON:
		m.Data = m.Data[:len(m.Data)/2]
	case contract.ReasonNotCloudEvent:
		edit(func(env map[string]any) { delete(env, "specversion") })
	case contract.ReasonUnsupportedSpecVersion:
		edit(func(env map[string]any) { env["specversion"] = "0.3" })
	case contract.ReasonMissingField:
		edit(func(env map[string]any) { delete(env, "source") })
	case contract.ReasonUnknownType:
		edit(func(env map[string]any) { env["type"] = "cat.smartcity.kpi.estimated.v1" })
	case contract.ReasonInvalidField:
		edit(func(env map[string]any) { env["time"] = now.UTC().Format("02/01/2006 15:04") })
	case contract.ReasonSubjectMismatch:
		m.Subject = contract.Subject(e.Municipality, "unregistered-sender", e.Kind())
	case contract.ReasonForbiddenPublisher:
		f := *e
		f.Publisher = "unauthorised-provider"
		f.Type = contract.TypeSLADefined
		f.Data = &contract.SLADefined{Service: "waste-collection", KPI: "containers-emptied-on-time",
			Direction: contract.HigherIsBetter, Target: 0.5, Objective: 0.5}
		m = mustMessage(&f, reason)
	case contract.ReasonNonFiniteValue:
		f := *e
		f.Type = contract.TypeKPIMeasured
		f.Data = map[string]any{"service": "waste-collection", "kpi": "containers-emptied-on-time", "value": "NaN"}
		m = mustMessage(&f, reason)
	case contract.ReasonFutureTime:
		f := *e
		f.Time = now.Add(time.Hour)
		m = mustMessage(&f, reason)
	case contract.ReasonTooLate:
		f := *e
		f.Time = now.Add(-contract.DefaultMaxLateness - Day)
		m = mustMessage(&f, reason)
	default:
		panic("no invalid message for reason " + string(reason))
	}
	return m
}
