package reader_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/evaluator/internal/reader"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

const (
	day = 24 * time.Hour
	w   = 30 * day
	ns  = time.Nanosecond
)

// T has a fraction of a second, so truncating it anywhere would show.
var T = time.Date(2026, 11, 20, 12, 0, 0, 500_000_000, time.UTC)

func database(t *testing.T) storage.Engine {
	t.Helper()
	db := storage.NewConn(testenv.ClickHouse(t))
	if err := storage.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db
}

// newReader is a reader on db whose statements are checked against what
// the evaluator's ClickHouse user is granted.
func newReader(t *testing.T, db storage.Engine, opts ...reader.Option) *reader.Reader {
	return reader.New(storagetest.Audited(t, db, storage.EvaluatorAccess), opts...)
}

var ev = storagetest.Event

func register(m, service, provider string, interval time.Duration, at time.Time) *contract.Event {
	delivery := contract.DeliveryConcession
	if provider == contract.Council {
		delivery = contract.DeliveryOwn
	}
	return ev(m, contract.Council, at, &contract.ServiceRegistered{Service: service, Name: service, Area: "area-" + service,
		Delivery: delivery, Provider: provider, ReportingIntervalSeconds: int64(interval / time.Second)})
}

func defineSLA(m, service, kpi string, at time.Time) *contract.Event {
	return ev(m, contract.Council, at, &contract.SLADefined{Service: service, KPI: kpi, Direction: contract.HigherIsBetter, Target: 2, Objective: 0.9})
}

func measure(m, publisher, service, kpi string, at time.Time, v float64) *contract.Event {
	return ev(m, publisher, at, &contract.KPIMeasured{Service: service, KPI: kpi, Value: v})
}

func open(m, publisher, service, id string, at time.Time, target time.Duration) *contract.Event {
	return ev(m, publisher, at, &contract.IncidentOpened{Service: service, Incident: id, Priority: "high", ResolutionTargetSeconds: int64(target / time.Second)})
}

func resolve(m, publisher, service, id string, at time.Time) *contract.Event {
	return ev(m, publisher, at, &contract.IncidentResolved{Service: service, Incident: id})
}

func read(t *testing.T, db storage.Engine, municipality string) *engine.Inputs {
	t.Helper()
	in, err := newReader(t, db).Read(context.Background(), T, w, municipality)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func criterion(a maturity.Assessment, id string) maturity.Criterion {
	for _, c := range a.Criteria {
		if c.ID == id {
			return c
		}
	}
	panic(id)
}

// TestReadAtNanosecondEdges stores events 1 ns before, at and 1 ns after
// every boundary of maturity.md and checks which count: the windows C
// and P, the catalogue at T (registration, retirement, first definition
// in A), known municipalities, live, the short windows, incidents opened
// and resolved before T, and deadlines due in C.
func TestReadAtNanosecondEdges(t *testing.T) {
	db := database(t)
	old := T.Add(-200 * day)
	storagetest.Store(t, db,
		register("vic", "aigua", "aigues", time.Hour, old), defineSLA("vic", "aigua", "pressio", old),
		register("vic", "ara", contract.Council, time.Hour, T),
		register("vic", "despres", contract.Council, time.Hour, T.Add(ns)),
		register("vic", "vell", contract.Council, time.Hour, old), ev("vic", contract.Council, T, &contract.ServiceRetired{Service: "vell"}),
		register("vic", "quasi", contract.Council, time.Hour, old), ev("vic", contract.Council, T.Add(ns), &contract.ServiceRetired{Service: "quasi"}),
		register("ara-only", "x", contract.Council, time.Hour, T),
		register("despres-only", "x", contract.Council, time.Hour, T.Add(ns)),
	)
	// Windows: P = [T-2W, T-W), C = [T-W, T), the 1 h window [T-1h, T).
	for _, at := range []time.Time{T.Add(-2*w - ns), T.Add(-2 * w), T.Add(-w - ns), T.Add(-w), T.Add(-time.Hour - ns), T.Add(-time.Hour), T.Add(-ns), T, T.Add(ns)} {
		storagetest.Store(t, db, measure("vic", "aigues", "aigua", "pressio", at, 3))
	}
	// Incidents of aigua, each named for the edge it sits on.
	storagetest.Store(t, db,
		open("vic", "aigues", "aigua", "deadline-at-T", T.Add(-4*time.Hour), 4*time.Hour),
		open("vic", "aigues", "aigua", "deadline-1ns-before-T", T.Add(-4*time.Hour-ns), 4*time.Hour),
		resolve("vic", "aigues", "aigua", "deadline-1ns-before-T", T.Add(-ns)),
		open("vic", "aigues", "aigua", "deadline-at-C-start", T.Add(-w-4*time.Hour), 4*time.Hour),
		resolve("vic", "aigues", "aigua", "deadline-at-C-start", T.Add(-w+ns)),
		open("vic", "aigues", "aigua", "deadline-1ns-before-C", T.Add(-w-4*time.Hour-ns), 4*time.Hour),
		open("vic", "aigues", "aigua", "opened-at-T", T, time.Hour),
		open("vic", "aigues", "aigua", "resolved-at-T", T.Add(-time.Hour), 10*time.Hour),
		resolve("vic", "aigues", "aigua", "resolved-at-T", T),
	)
	in := read(t, db, "")
	if len(in.Municipalities) != 2 || in.Municipalities["vic"] == nil || in.Municipalities["ara-only"] == nil {
		t.Fatalf("known %v, want vic and ara-only (despres-only's only event is 1 ns after T)", keys(in.Municipalities))
	}
	vic := in.Municipalities["vic"].Input
	var ids []string
	for _, s := range vic.Services {
		ids = append(ids, s.ID)
	}
	if strings.Join(ids, ",") != "aigua,ara,quasi" {
		t.Errorf("catalogue at T: %v, want aigua, ara (registered at T) and quasi (retired 1 ns after T)", ids)
	}
	aigua := vic.Services[0]
	if aigua.MeasurementsC != 4 || !aigua.LastMeasurement.Equal(T.Add(-ns)) {
		t.Errorf("aigua: %d measurements in C, last %s; want 4 (T-W, T-1h-1ns, T-1h, T-1ns), last T-1ns", aigua.MeasurementsC, aigua.LastMeasurement)
	}
	k := vic.SLAs[0]
	if k.C != (maturity.WindowStats{Samples: 4, Meeting: 4}) || k.P != (maturity.WindowStats{Samples: 2, Meeting: 2}) {
		t.Errorf("SLA: C %+v, P %+v; want 4 in C, 2 in P (T-2W and T-W-1ns)", k.C, k.P)
	}
	short := in.Municipalities["vic"].Short[maturity.SLAKey{Service: "aigua", KPI: "pressio"}]
	if short["1h"].Samples != 2 || short["6h"].Samples != 3 || short["3d"].Samples != 3 {
		t.Errorf("short windows %+v; want 2 in 1h (T-1h, T-1ns), 3 in 6h and 3d", short)
	}
	got := map[string]maturity.Incident{}
	for _, i := range vic.Incidents {
		got[i.ID] = i
	}
	if len(got) != 5 || got["opened-at-T"].ID != "" {
		t.Errorf("incidents %v; want every one but opened-at-T", keys(got))
	}
	if r := got["deadline-1ns-before-T"].ResolvedAt; !r.Equal(T.Add(-ns)) {
		t.Errorf("resolution 1 ns before T: %s", r)
	}
	if r := got["resolved-at-T"].ResolvedAt; !r.IsZero() {
		t.Errorf("resolution at T counted: %s", r)
	}
	a := maturity.Evaluate(maturity.DefaultConfig(), vic)
	if c := criterion(a, "incident_response"); c.Value == nil || *c.Value != 0.5 {
		t.Errorf("incident_response %+v; want 1 of 2 due in C on time (deadlines T-1ns and T-W; not T nor T-W-1ns)", c)
	}
	if a.Services[0].OpenIncidents != 3 {
		t.Errorf("open incidents %d, want 3 (deadline-at-T, deadline-1ns-before-C, resolved-at-T)", a.Services[0].OpenIncidents)
	}
}

// TestReadLiveAndAdaptiveEdges: live when the latest counted measurement
// is at T - 2 intervals exactly, not 1 ns before; adaptive when a first
// definition is at T - 90 d exactly, not 1 ns before.
func TestReadLiveAndAdaptiveEdges(t *testing.T) {
	db := database(t)
	old := T.Add(-200 * day)
	storagetest.Store(t, db,
		register("granollers", "a", contract.Council, time.Hour, old), register("granollers", "b", contract.Council, time.Hour, old),
		measure("granollers", contract.Council, "a", "k", T.Add(-2*time.Hour), 1),
		measure("granollers", contract.Council, "b", "k", T.Add(-2*time.Hour-ns), 1),
		register("manlleu", "a", contract.Council, time.Hour, old), defineSLA("manlleu", "a", "k", T.Add(-90*day)),
		register("tona", "a", contract.Council, time.Hour, old), defineSLA("tona", "a", "k", T.Add(-90*day-ns)),
	)
	in := read(t, db, "")
	cfg := maturity.DefaultConfig()
	if c := criterion(maturity.Evaluate(cfg, in.Municipalities["granollers"].Input), "realtime"); c.Value == nil || *c.Value != 0.5 {
		t.Errorf("granollers realtime %+v; want 1 of 2 live", c)
	}
	for m, want := range map[string]float64{"manlleu": 1, "tona": 0} {
		if c := criterion(maturity.Evaluate(cfg, in.Municipalities[m].Input), "adaptive"); c.Value == nil || *c.Value != want {
			t.Errorf("%s adaptive %+v; want %v", m, c, want)
		}
	}
}

// TestReadOlderLastAndDuplicates: a service silent for more than 2W still
// has its latest measurement; an identity stored twice and not merged yet
// is counted once.
func TestReadOlderLastAndDuplicates(t *testing.T) {
	db := database(t)
	old := T.Add(-200 * day)
	storagetest.Store(t, db,
		register("vic", "antic", "p", time.Hour, old),
		measure("vic", "p", "antic", "k", T.Add(-100*day), 1),
		measure("vic", "p", "antic", "k", T.Add(-2*w-ns), 1),
		register("vic", "doble", "p", time.Hour, old), defineSLA("vic", "doble", "k", old),
	)
	twice := measure("vic", "p", "doble", "k", T.Add(-time.Hour), 3)
	storagetest.Store(t, db, twice)
	storagetest.Store(t, db, twice)
	id := storage.Identity{Municipality: "vic", Publisher: "p", ID: twice.ID}
	if err := db.Insert(context.Background(), storage.Duplicates, storage.DuplicateColumns, [][]any{storage.DuplicateRow(id, false, time.Now())}); err != nil {
		t.Fatal(err)
	}
	vic := read(t, db, "vic").Municipalities["vic"].Input
	if s := vic.Services[0]; s.ID != "antic" || !s.LastMeasurement.Equal(T.Add(-2*w-ns)) || s.MeasurementsC != 0 {
		t.Errorf("silent service %+v; want its latest measurement at T-2W-1ns", s)
	}
	if s := vic.Services[1]; s.MeasurementsC != 1 || vic.SLAs[0].C.Samples != 1 {
		t.Errorf("identity stored twice: %d measurements, %d samples; want 1", s.MeasurementsC, vic.SLAs[0].C.Samples)
	}
}

// TestReadPublishersAndUnknownMunicipalities: measurements of someone who
// is not the provider are unattributed; those of municipalities whose
// council has published nothing are counted apart and create nothing.
func TestReadPublishersAndUnknownMunicipalities(t *testing.T) {
	db := database(t)
	old := T.Add(-200 * day)
	storagetest.Store(t, db,
		register("vic", "aigua", "aigues", time.Hour, old),
		measure("vic", "aigues", "aigua", "k", T.Add(-time.Hour), 1),
		measure("vic", contract.Council, "aigua", "k", T.Add(-time.Hour), 1),
		measure("vic", "intrus", "aigua", "k", T.Add(-time.Hour), 1),
		measure("vic", "aigues", "no-catalogada", "k", T.Add(-time.Hour), 1),
		measure("inventat", "algu", "x", "y", T.Add(-time.Hour), 1),
		measure("inventat", "algu", "x", "y", T.Add(-w-time.Hour), 1), // in P: not counted anywhere
		open("inventat", "algu", "x", "i", T.Add(-time.Hour), time.Hour),
	)
	in := read(t, db, "")
	if len(in.Municipalities) != 1 || in.UnknownMeasurements != 1 {
		t.Fatalf("municipalities %v, unknown measurements %d; want vic only and 1", keys(in.Municipalities), in.UnknownMeasurements)
	}
	vic := in.Municipalities["vic"]
	if vic.Services[0].MeasurementsC != 2 || vic.Unattributed != 2 {
		t.Errorf("vic: %d counted, %d unattributed; want 2 (provider, council) and 2 (intruder, uncatalogued service)", vic.Services[0].MeasurementsC, vic.Unattributed)
	}
	if one := read(t, db, "inventat"); len(one.Municipalities) != 0 {
		t.Errorf("unknown municipality read on its own: %v", keys(one.Municipalities))
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
