package service_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/ingest/config"
	"github.com/assoliment/assoliment/services/ingest/service"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// env is one ingest service running against real NATS and ClickHouse.
type env struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	ch  *chconn.Conn
	cfg config.Config
}

func start(t *testing.T, extra ...string) *env {
	t.Helper()
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	cfg, err := config.Parse(append([]string{
		"--nats-url", ns.ClientURL(), "--clickhouse-addr", testenv.ClickHouseAddr(),
		"--clickhouse-database", ch.Database, "--http-addr", testenv.FreeAddr(t),
		"--flush-interval", "50ms", "--log-level", "warn",
	}, extra...), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	nc := testenv.Connect(t, ns)
	e := &env{ch: ch, cfg: cfg, nc: nc, js: mustJS(t, nc)}
	runService(t, cfg)
	return e
}

func runService(t *testing.T, cfg config.Config) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
	})
}

func mustJS(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func event(typ, municipality, publisher, id string, at time.Time, data any) *contract.Event {
	return &contract.Event{ID: id, Type: typ, Time: at, Municipality: municipality, Publisher: publisher, Data: data}
}

func publish(t *testing.T, js jetstream.JetStream, subject string, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := js.Publish(ctx, subject, payload)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
		time.Sleep(50 * time.Millisecond) // the stream is created by the service
	}
}

func publishEvent(t *testing.T, js jetstream.JetStream, e *contract.Event) {
	t.Helper()
	b, err := contract.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, e.Subject(), b)
}

func count(t *testing.T, ch *chconn.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := ch.QueryRow(context.Background(), strings.ReplaceAll(q, "{db}", "`"+ch.Database+"`")).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestEveryTypeStored(t *testing.T) {
	e := start(t)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Second).Add(123 * time.Millisecond)
	events := []*contract.Event{
		event(contract.TypeServiceRegistered, "sabadell", "council", "c1", at, &contract.ServiceRegistered{
			Service: "waste", Name: "Recollida", Area: "environment", Delivery: "concession", Provider: "fcc", ReportingIntervalSeconds: 900, OpenData: true}),
		event(contract.TypeSLADefined, "sabadell", "council", "c2", at, &contract.SLADefined{
			Service: "waste", KPI: "on-time", Name: "On time", Unit: "ratio", Direction: "higher_is_better", Target: 0.98, Objective: 0.95}),
		event(contract.TypeServiceRetired, "sabadell", "council", "c3", at, &contract.ServiceRetired{Service: "old"}),
		event(contract.TypeKPIMeasured, "sabadell", "fcc", "m1", at, &contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: 0.991}),
		event(contract.TypeIncidentOpened, "sabadell", "fcc", "i1", at, &contract.IncidentOpened{Service: "waste", Incident: "inc-1", Priority: "high", ResolutionTargetSeconds: 14400}),
		event(contract.TypeIncidentResolved, "sabadell", "fcc", "i2", at, &contract.IncidentResolved{Service: "waste", Incident: "inc-1"}),
	}
	for _, ev := range events {
		publishEvent(t, e.js, ev)
	}
	testenv.Eventually(t, "all rows", 20*time.Second, func() bool {
		return count(t, e.ch, "SELECT count() FROM {db}.catalog")+count(t, e.ch, "SELECT count() FROM {db}.measurements")+
			count(t, e.ch, "SELECT count() FROM {db}.incidents") == 6
	})
	var (
		svc, kpi  string
		value     float64
		ts        time.Time
		ms        uint16
		seq       uint64
		provider  string
		interval  uint32
		open      uint8
		target    float64
		objective float64
		priority  string
		rt        uint32
	)
	row := e.ch.QueryRow(context.Background(), "SELECT service, kpi, value, time, time_ms, stream_seq FROM `"+e.ch.Database+"`.measurements WHERE id = 'm1'")
	if err := row.Scan(&svc, &kpi, &value, &ts, &ms, &seq); err != nil {
		t.Fatal(err)
	}
	if svc != "waste" || kpi != "on-time" || value != 0.991 || !ts.Equal(at.Truncate(time.Second)) || ms != 123 || seq == 0 {
		t.Fatalf("measurement row: %s %s %v %v %d %d", svc, kpi, value, ts, ms, seq)
	}
	row = e.ch.QueryRow(context.Background(), "SELECT provider, reporting_interval_seconds, open_data FROM `"+e.ch.Database+"`.catalog WHERE id = 'c1'")
	if err := row.Scan(&provider, &interval, &open); err != nil || provider != "fcc" || interval != 900 || open != 1 {
		t.Fatalf("registered row: %v %s %d %d", err, provider, interval, open)
	}
	row = e.ch.QueryRow(context.Background(), "SELECT target, objective FROM `"+e.ch.Database+"`.catalog WHERE id = 'c2'")
	if err := row.Scan(&target, &objective); err != nil || target != 0.98 || objective != 0.95 {
		t.Fatalf("sla row: %v %v %v", err, target, objective)
	}
	row = e.ch.QueryRow(context.Background(), "SELECT priority, resolution_target_seconds FROM `"+e.ch.Database+"`.incidents WHERE id = 'i1'")
	if err := row.Scan(&priority, &rt); err != nil || priority != "high" || rt != 14400 {
		t.Fatalf("incident row: %v %s %d", err, priority, rt)
	}
	// Readiness and metrics.
	assertMetric(t, e, `smartcity_ingest_events_total{outcome="stored",type="cat.smartcity.kpi.measured.v1"} 1`)
	if code, body := get(t, "http://"+e.cfg.HTTPAddr+"/readyz"); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	if code, _ := get(t, "http://"+e.cfg.HTTPAddr+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func assertMetric(t *testing.T, e *env, want string) {
	t.Helper()
	testenv.Eventually(t, want, 10*time.Second, func() bool {
		_, body := get(t, "http://"+e.cfg.HTTPAddr+"/metrics")
		return strings.Contains(body, want)
	})
}

func TestDuplicatesCountedOnce(t *testing.T) {
	e := start(t)
	at := time.Now().UTC().Add(-time.Minute)
	m := event(contract.TypeKPIMeasured, "vic", "aigues", "dup-1", at, &contract.KPIMeasured{Service: "water", KPI: "pressure", Value: 3})
	publishEvent(t, e.js, m)
	// The same event again (no Nats-Msg-Id, so the broker keeps it), with
	// other content: the first copy stands.
	m2 := *m
	m2.Data = &contract.KPIMeasured{Service: "water", KPI: "pressure", Value: 99}
	publishEvent(t, e.js, &m2)
	// Another publisher may use the same id, even with the broker message id
	// header set to it: a different event, never suppressed.
	other := event(contract.TypeKPIMeasured, "vic", "other-co", "dup-1", at, &contract.KPIMeasured{Service: "water", KPI: "pressure", Value: 5})
	ob, _ := contract.Marshal(other)
	pub := contract.NewPublisher(e.js)
	if err := pub.PublishRaw(context.Background(), other.Subject(), other.ID, ob); err != nil {
		t.Fatal(err)
	}
	mb, _ := contract.Marshal(m)
	if err := pub.PublishRaw(context.Background(), m.Subject(), m.ID, mb); err != nil { // a re-sent copy, same header
		t.Fatal(err)
	}
	if err := pub.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "two identities", 20*time.Second, func() bool {
		return count(t, e.ch, "SELECT count() FROM {db}.measurements") == 2
	})
	time.Sleep(500 * time.Millisecond)
	// Sent again later, after the first copies are stored.
	publishEvent(t, e.js, &m2)
	time.Sleep(time.Second)
	if n := count(t, e.ch, "SELECT count() FROM {db}.measurements"); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
	if v := count(t, e.ch, "SELECT toUInt64(value) FROM {db}.measurements WHERE publisher = 'aigues'"); v != 3 {
		t.Fatalf("value %d: the first copy must stand", v)
	}
	assertMetric(t, e, `smartcity_ingest_events_total{outcome="duplicate",type="cat.smartcity.kpi.measured.v1"} 3`)
	assertMetric(t, e, `smartcity_ingest_events_total{outcome="stored",type="cat.smartcity.kpi.measured.v1"} 2`)
}

func TestRejectionsDeadLettered(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "publishers.yaml")
	if err := os.WriteFile(spec, []byte("municipalities: [olot, vic]\nproviders:\n  - id: fcc\n    municipalities: [olot, vic]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, "--publishers-file", spec)
	good := event(contract.TypeKPIMeasured, "olot", "fcc", "ok-1", time.Now().Add(-time.Minute), &contract.KPIMeasured{Service: "s", KPI: "k", Value: 1})
	gb, _ := contract.Marshal(good)
	cases := []struct {
		subject string
		body    []byte
		reason  contract.Reason
	}{
		{"smartcity.olot.fcc.measurement", []byte(`{"specversion":`), contract.ReasonMalformedJSON},
		{"smartcity.olot.fcc.measurement", []byte(`[1]`), contract.ReasonNotCloudEvent},
		{"smartcity.olot.fcc.measurement", bytes.Replace(gb, []byte(`"1.0"`), []byte(`"0.3"`), 1), contract.ReasonUnsupportedSpecVersion},
		{"smartcity.olot.fcc.measurement", bytes.Replace(gb, []byte(`"id":"ok-1",`), nil, 1), contract.ReasonMissingField},
		{"smartcity.olot.fcc.measurement", bytes.Replace(gb, []byte(`kpi.measured.v1`), []byte(`kpi.measured.v9`), 1), contract.ReasonUnknownType},
		{"smartcity.olot.fcc.measurement", bytes.Replace(gb, []byte(`"value":1`), []byte(`"value":"1"`), 1), contract.ReasonInvalidField},
		{"smartcity.vic.fcc.measurement", gb, contract.ReasonSubjectMismatch},
		{"smartcity.olot.fcc.catalog", bytes.Replace(gb, []byte(`kpi.measured`), []byte(`service.retired`), 1), contract.ReasonForbiddenPublisher},
		{"smartcity.olot.fcc.measurement", bytes.Replace(gb, []byte(`"value":1`), []byte(`"value":"NaN"`), 1), contract.ReasonNonFiniteValue},
		{"smartcity.olot.fcc.measurement", bytes.Replace(gb, gb[bytes.Index(gb, []byte(`"time":"`)):bytes.Index(gb, []byte(`","municipality`))], []byte(`"time":"2999-01-01T00:00:00Z`), 1), contract.ReasonFutureTime},
		{"smartcity.olot.fcc.measurement", bytes.Replace(gb, gb[bytes.Index(gb, []byte(`"time":"`)):bytes.Index(gb, []byte(`","municipality`))], []byte(`"time":"2001-01-01T00:00:00Z`), 1), contract.ReasonTooLate},
		{"smartcity.olot.fcc.measurement", append(gb[:len(gb)-1:len(gb)-1], []byte(`,"pad":"`+strings.Repeat("x", 70000)+`"}`)...), contract.ReasonTooLarge},
		// a publisher the configuration does not list is counted as unknown
		{"smartcity.olot.evil.measurement", []byte(`{}`), contract.ReasonNotCloudEvent},
	}
	for i, c := range cases {
		publish(t, e.js, c.subject, c.body)
		// valid events between the bad ones are all stored
		ok := *good
		ok.ID = fmt.Sprintf("ok-%d", i+2)
		publishEvent(t, e.js, &ok)
	}
	testenv.Eventually(t, "valid events stored", 20*time.Second, func() bool {
		return count(t, e.ch, "SELECT count() FROM {db}.measurements") == uint64(len(cases))
	})
	ctx := context.Background()
	dlq, err := e.js.Stream(ctx, contract.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "dead letters", 20*time.Second, func() bool {
		info, err := dlq.Info(ctx)
		return err == nil && info.State.Msgs == uint64(len(cases))
	})
	// Rejections by publisher: only configured publishers have their own
	// label value.
	assertMetric(t, e, `smartcity_ingest_rejections_total{publisher="fcc",reason="too_large"} 1`)
	assertMetric(t, e, `smartcity_ingest_rejections_total{publisher="fcc",reason="not_cloudevent"} 1`)
	assertMetric(t, e, `smartcity_ingest_rejections_total{publisher="unknown",reason="not_cloudevent"} 1`)
	assertMetric(t, e, `smartcity_ingest_rejections_total{publisher="council",reason="too_large"} 0`)
	for i, c := range cases {
		m, err := dlq.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(contract.HeaderReason); got != string(c.reason) {
			t.Errorf("case %d: reason %s, want %s (%s)", i, got, c.reason, m.Header.Get(contract.HeaderDetail))
		}
		if m.Subject != contract.DeadLetterSubject(c.subject, c.reason) || m.Header.Get(contract.HeaderSubject) != c.subject {
			t.Errorf("case %d: subject %s / %s", i, m.Subject, m.Header.Get(contract.HeaderSubject))
		}
		if !bytes.Equal(m.Data, c.body) {
			t.Errorf("case %d: body differs from the original", i)
		}
		if m.Header.Get(contract.HeaderStreamSeq) == "" || m.Header.Get(contract.HeaderReceivedAt) == "" {
			t.Errorf("case %d: missing headers %v", i, m.Header)
		}
	}
}

// TestConsumerDeletedRecovers deletes the durable consumer under a running
// service: it creates the consumer again and goes on storing.
func TestConsumerDeletedRecovers(t *testing.T) {
	e := start(t)
	at := time.Now().UTC().Add(-time.Minute)
	publishEvent(t, e.js, event(contract.TypeKPIMeasured, "vic", "aigues", "before", at, &contract.KPIMeasured{Service: "s", KPI: "k", Value: 1}))
	testenv.Eventually(t, "first event", 20*time.Second, func() bool { return count(t, e.ch, "SELECT count() FROM {db}.measurements") == 1 })
	if err := e.js.DeleteConsumer(context.Background(), contract.Stream, e.cfg.Consumer); err != nil {
		t.Fatal(err)
	}
	publishEvent(t, e.js, event(contract.TypeKPIMeasured, "vic", "aigues", "after", at, &contract.KPIMeasured{Service: "s", KPI: "k", Value: 2}))
	testenv.Eventually(t, "event after the consumer was deleted", 30*time.Second, func() bool {
		return count(t, e.ch, "SELECT count() FROM {db}.measurements") == 2
	})
}
