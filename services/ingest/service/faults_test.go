package service_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// The fault tests: run them alone with
//
//	go test ./service/ -run '^TestFault' -count=1 -v
//
// from services/ingest (and services/evaluator for the evaluator restart).

// outage is how long ClickHouse stays unreachable in TestFaultClickHouseOutage.
const outage = 30 * time.Second

// tcpProxy forwards connections from a loopback port to target. Cut closes
// the listener and every connection, so the port refuses connections until
// Restore listens on it again.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.forward(c)
		}
	}()
}

func (p *tcpProxy) forward(c net.Conn) {
	u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut meanwhile
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	go pipe(u, c)
	go pipe(c, u)
}

// Cut makes the server unreachable: established connections are closed and
// new ones refused.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore accepts connections on the same address again.
func (p *tcpProxy) Restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
}

// syncBuffer collects a service's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ingestIn runs the ingest service in this process with the given
// ClickHouse address; stop ends it (also called at cleanup).
func ingestIn(t *testing.T, natsURL, chAddr string, ch *chconn.Conn, logw io.Writer, extra ...string) (cfg config.Config, stop func()) {
	t.Helper()
	args := append([]string{"--nats-url", natsURL, "--clickhouse-addr", chAddr, "--clickhouse-database", ch.Database,
		"--http-addr", testenv.FreeAddr(t), "--flush-interval", "50ms", "--log-level", "warn", "--ack-wait", "10s"}, extra...)
	cfg, err := config.Parse(args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg, logw) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ingest: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return cfg, stop
}

// metricValue reads one unlabelled sample from an ingest's /metrics.
func metricValue(t *testing.T, cfg config.Config, name string) float64 {
	t.Helper()
	_, body := get(t, "http://"+cfg.HTTPAddr+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s missing:\n%s", name, body)
	return 0
}

// steadyPublisher sends measurements with ids s-0, s-1… at a steady rate,
// plus a copy without broker message id of every 100th one, until stopped.
// A publish the broker did not acknowledge is sent again, with the same
// message id, until it is.
type steadyPublisher struct {
	stopc   chan struct{}
	done    chan struct{}
	sent    atomic.Int64
	retried atomic.Int64 // publishes sent again after a failure
	err     error
}

func publishSteady(t *testing.T, js jetstream.JetStream, rate int) *steadyPublisher {
	t.Helper()
	sp := &steadyPublisher{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		sp.err = sp.run(js, rate)
	}()
	t.Cleanup(func() { sp.stop(t) })
	return sp
}

func (sp *steadyPublisher) run(js jetstream.JetStream, rate int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var failed []string
	pub := contract.NewPublisher(js, contract.WithMaxInFlight(512), contract.WithResults(func(r contract.Result) {
		if r.Err != nil && r.ID != "" {
			failed = append(failed, r.ID)
		}
	}))
	base := time.Now().UTC().Add(-48 * time.Hour)
	munis := []string{"sabadell", "terrassa", "vic", "olot"}
	mk := func(i int) *contract.Event {
		return &contract.Event{ID: fmt.Sprintf("s-%d", i), Type: contract.TypeKPIMeasured,
			Time: base.Add(time.Duration(i) * time.Second), Municipality: munis[i%len(munis)], Publisher: "fcc",
			Data: &contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: float64(i % 100)}}
	}
	const tick = 20 * time.Millisecond
	perTick := max(1, rate*int(tick/time.Millisecond)/1000)
	tk := time.NewTicker(tick)
	defer tk.Stop()
	n := 0
loop:
	for {
		select {
		case <-sp.stopc:
			break loop
		case <-tk.C:
		}
		for j := 0; j < perTick; j++ {
			ev := mk(n)
			if err := pub.Publish(ctx, ev); err != nil {
				return err
			}
			if n%100 == 0 {
				b, _ := contract.Marshal(ev)
				if err := pub.PublishRaw(ctx, ev.Subject(), "", b); err != nil {
					return err
				}
			}
			n++
			sp.sent.Store(int64(n))
		}
	}
	for attempt := 0; ; attempt++ {
		_ = pub.Wait(ctx) // failures are in failed
		if len(failed) == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%d publishes never acknowledged: %w", len(failed), ctx.Err())
		}
		again := failed
		failed = nil
		sp.retried.Add(int64(len(again)))
		time.Sleep(200 * time.Millisecond)
		for _, id := range again {
			i, _ := strconv.Atoi(strings.TrimPrefix(id, "s-"))
			if err := pub.Publish(ctx, mk(i)); err != nil {
				return err
			}
		}
	}
}

// stop ends publishing and waits until every event is acknowledged; it
// returns how many distinct events were published.
func (sp *steadyPublisher) stop(t *testing.T) int {
	t.Helper()
	select {
	case <-sp.stopc:
	default:
		close(sp.stopc)
	}
	<-sp.done
	if sp.err != nil {
		t.Fatalf("publisher: %v", sp.err)
	}
	return int(sp.sent.Load())
}

// TestFaultClickHouseOutage cuts the ingest's connection to ClickHouse (a
// proxy that closes every connection and refuses new ones) for 30 s during a
// steady publish: /readyz answers 503 and smartcity_ingest_clickhouse_up is
// 0 meanwhile; once the proxy is back the same ingest recovers on its own,
// reports ready and up again, and every event is stored exactly once.
func TestFaultClickHouseOutage(t *testing.T) {
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	createStream(t, js)
	px := newProxy(t, testenv.ClickHouseAddr())
	logs := &syncBuffer{}
	cfg, stop := ingestIn(t, ns.ClientURL(), px.addr, ch, logs, "--batch-size", "1000")
	ready := func() int { c, _ := get(t, "http://"+cfg.HTTPAddr+"/readyz"); return c }
	testenv.Eventually(t, "ingest ready", 30*time.Second, func() bool { return httpUp(cfg) && ready() == 200 })

	sp := publishSteady(t, js, 500)
	testenv.Eventually(t, "rows stored before the outage", 20*time.Second, func() bool {
		return count(t, ch, "SELECT count() FROM {db}.measurements") > 500
	})
	px.Cut()
	cutAt := time.Now()
	t.Logf("clickhouse cut at %d events published", sp.sent.Load())
	testenv.Eventually(t, "/readyz 503 during the outage", 15*time.Second, func() bool { return ready() == 503 })
	testenv.Eventually(t, "clickhouse_up 0", 5*time.Second, func() bool { return metricValue(t, cfg, "smartcity_ingest_clickhouse_up") == 0 })
	stored := count(t, ch, "SELECT count() FROM {db}.measurements")
	time.Sleep(outage - time.Since(cutAt))
	if c := ready(); c != 503 {
		t.Fatalf("/readyz %d at the end of the outage, want 503", c)
	}
	if metricValue(t, cfg, "smartcity_ingest_clickhouse_up") != 0 {
		t.Fatal("smartcity_ingest_clickhouse_up is not 0 at the end of the outage")
	}
	if n := count(t, ch, "SELECT count() FROM {db}.measurements"); n != stored {
		t.Fatalf("rows went from %d to %d while ClickHouse was unreachable through the proxy", stored, n)
	}
	px.Restore()
	t.Logf("clickhouse restored at %d events published", sp.sent.Load())
	testenv.Eventually(t, "/readyz 200 after the outage", 30*time.Second, func() bool { return ready() == 200 })
	testenv.Eventually(t, "clickhouse_up 1", 5*time.Second, func() bool { return metricValue(t, cfg, "smartcity_ingest_clickhouse_up") == 1 })
	time.Sleep(3 * time.Second) // a steady publish after recovery, too
	n := sp.stop(t)
	assertExactlyOnce(t, ch, n)
	if e := metricValue(t, cfg, "smartcity_ingest_insert_errors_total"); e == 0 {
		t.Fatal("smartcity_ingest_insert_errors_total is 0 after an outage")
	}
	assertMetric(t, &env{cfg: cfg}, fmt.Sprintf(`smartcity_ingest_events_total{outcome="stored",type="cat.smartcity.kpi.measured.v1"} %d`, n))
	stop()
	if !strings.Contains(logs.String(), "batch not stored yet; retrying") {
		t.Fatalf("the outage is not in the ingest's log:\n%s", tail(logs.String()))
	}
	t.Logf("%d events, outage %s", n, outage)
}

// TestFaultClickHouseTableError makes ClickHouse refuse the ingest's
// queries while the server stays up (the measurements table is detached for
// a few seconds, standing in for a read-only or full disk): the error is
// logged with ClickHouse's message, counted, shown by /readyz and
// smartcity_ingest_clickhouse_up, retried, and nothing is dropped once the
// table is back.
func TestFaultClickHouseTableError(t *testing.T) {
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	createStream(t, js)
	logs := &syncBuffer{}
	cfg, stop := ingestIn(t, ns.ClientURL(), testenv.ClickHouseAddr(), ch, logs, "--batch-size", "1000")
	ready := func() int { c, _ := get(t, "http://"+cfg.HTTPAddr+"/readyz"); return c }
	testenv.Eventually(t, "ingest ready", 30*time.Second, func() bool { return httpUp(cfg) && ready() == 200 })

	sp := publishSteady(t, js, 500)
	testenv.Eventually(t, "rows stored", 20*time.Second, func() bool { return count(t, ch, "SELECT count() FROM {db}.measurements") > 500 })
	table := "`" + ch.Database + "`.measurements"
	ctx := context.Background()
	if err := ch.Exec(ctx, "DETACH TABLE "+table); err != nil {
		t.Fatal(err)
	}
	attached := false
	attach := func() {
		if !attached {
			attached = true
			if err := ch.Exec(ctx, "ATTACH TABLE "+table); err != nil {
				t.Fatalf("attach: %v", err)
			}
		}
	}
	t.Cleanup(attach)
	testenv.Eventually(t, "/readyz 503 while the table refuses writes", 15*time.Second, func() bool { return ready() == 503 })
	testenv.Eventually(t, "clickhouse_up 0", 5*time.Second, func() bool { return metricValue(t, cfg, "smartcity_ingest_clickhouse_up") == 0 })
	time.Sleep(5 * time.Second)
	errs := metricValue(t, cfg, "smartcity_ingest_insert_errors_total")
	if errs < 2 {
		t.Fatalf("smartcity_ingest_insert_errors_total %v: not retried", errs)
	}
	attach()
	testenv.Eventually(t, "/readyz 200 once the table is back", 30*time.Second, func() bool { return ready() == 200 })
	time.Sleep(2 * time.Second)
	n := sp.stop(t)
	assertExactlyOnce(t, ch, n)
	if metricValue(t, cfg, "smartcity_ingest_clickhouse_up") != 1 {
		t.Fatal("smartcity_ingest_clickhouse_up is not 1 after recovery")
	}
	stop()
	log := logs.String()
	// The log names the failed step and carries ClickHouse's own message.
	if !strings.Contains(log, "batch not stored yet; retrying") || !strings.Contains(log, `"step":"clickhouse"`) ||
		!strings.Contains(log, "measurements doesn't exist") {
		t.Fatalf("the error is not reported clearly in the ingest's log:\n%s", tail(log))
	}
	t.Logf("%d events, %v insert errors", n, errs)
}

// TestFaultNATSRestart restarts the NATS server (same port, same store)
// while events are published and consumed: the ingest reconnects on its own
// and every event the publisher had acknowledged, or sent again after a
// failure, is stored exactly once.
func TestFaultNATSRestart(t *testing.T) {
	dir := t.TempDir()
	port := testenv.FreePort(t)
	ns := testenv.NATSOn(t, dir, port)
	ch := testenv.ClickHouse(t)
	nc, err := nats.Connect(ns.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js := mustJS(t, nc)
	createStream(t, js)
	cfg, stop := ingestIn(t, ns.ClientURL(), testenv.ClickHouseAddr(), ch, io.Discard, "--batch-size", "1000")
	ready := func() int { c, _ := get(t, "http://"+cfg.HTTPAddr+"/readyz"); return c }
	testenv.Eventually(t, "ingest ready", 30*time.Second, func() bool { return httpUp(cfg) && ready() == 200 })

	sp := publishSteady(t, js, 1000)
	testenv.Eventually(t, "rows stored", 20*time.Second, func() bool { return count(t, ch, "SELECT count() FROM {db}.measurements") > 1000 })
	ns.Shutdown()
	ns.WaitForShutdown()
	t.Logf("nats stopped at %d events published", sp.sent.Load())
	testenv.Eventually(t, "/readyz 503 while NATS is down", 10*time.Second, func() bool { return ready() == 503 })
	time.Sleep(2 * time.Second)
	ns = testenv.NATSOn(t, dir, port)
	t.Logf("nats restarted")
	testenv.Eventually(t, "/readyz 200 after the restart", 30*time.Second, func() bool { return ready() == 200 })
	before := count(t, ch, "SELECT count() FROM {db}.measurements")
	testenv.Eventually(t, "rows stored after the restart", 30*time.Second, func() bool {
		return count(t, ch, "SELECT count() FROM {db}.measurements") > before+1000
	})
	n := sp.stop(t)
	assertExactlyOnce(t, ch, n)
	stop() // before the server goes away at cleanup
	ns.Shutdown()
	t.Logf("%d events, %d publishes sent again after a failure", n, sp.retried.Load())
}

// TestFaultKilledFiveTimes kills the ingest process with SIGKILL five times
// under a steady load, each time while it is storing (rows grew since its
// start) at a random moment: each identity is stored exactly once.
func TestFaultKilledFiveTimes(t *testing.T) {
	bin := buildIngest(t)
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	createStream(t, js)
	t.Cleanup(func() { dumpState(t, js) })

	sp := publishSteady(t, js, 3000)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	rows := func() uint64 { // 0 until the ingest has created the table
		var n uint64
		_ = ch.QueryRow(context.Background(), "SELECT count() FROM `"+ch.Database+"`.measurements").Scan(&n)
		return n
	}
	p := startIngest(t, bin, ns.ClientURL(), ch, "--batch-size", "1000")
	for kill := 0; kill < 5; kill++ {
		before := rows()
		testenv.Eventually(t, "the restarted ingest storing", 30*time.Second, func() bool { return rows() > before })
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		p.kill()
		t.Logf("killed ingest (%d) at %d events published, %d rows stored", kill+1, sp.sent.Load(), rows())
		p = startIngest(t, bin, ns.ClientURL(), ch, "--batch-size", "1000")
	}
	n := sp.stop(t)
	assertExactlyOnce(t, ch, n)
	t.Logf("%d events", n)
}

// httpUp reports whether the ingest's HTTP server answers.
func httpUp(cfg config.Config) bool {
	c, err := net.DialTimeout("tcp", cfg.HTTPAddr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}
