package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// buildIngest compiles the ingest command once per test binary.
func buildIngest(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ingest")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/ingest")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build ingest: %v", err)
	}
	return bin
}

// proc is an ingest process. Stopping it with SIGTERM must end it with
// exit status 0: a panic or an error on the way out fails the test.
type proc struct {
	cmd  *exec.Cmd
	http string // its HTTP address
}

func startIngest(t *testing.T, bin, natsURL string, ch *chconn.Conn, extra ...string) *proc {
	t.Helper()
	addr := testenv.FreeAddr(t)
	args := append([]string{"--nats-url", natsURL, "--clickhouse-addr", testenv.ClickHouseAddr(),
		"--clickhouse-database", ch.Database, "--http-addr", addr, "--log-level", "warn",
		"--ack-wait", "10s"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, http: addr}
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// stop sends SIGTERM and fails t unless the process exits with status 0
// within 30 s. A process killed before is left alone.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
		if !p.cmd.ProcessState.Success() {
			t.Errorf("ingest exited with %s on SIGTERM", p.cmd.ProcessState)
		}
	case <-time.After(30 * time.Second):
		p.kill()
		t.Errorf("ingest did not stop within 30 s of SIGTERM")
	}
}

// publishMany sends n measurements (ids m-0 … m-n-1) plus resent copies of
// every 100th one, with the contract publisher. It may run in its own
// goroutine: it returns its error rather than failing the test.
func publishMany(js jetstream.JetStream, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var failed atomic.Int64
	pub := contract.NewPublisher(js, contract.WithMaxInFlight(4096), contract.WithResults(func(r contract.Result) {
		if r.Err != nil {
			failed.Add(1)
		}
	}))
	base := time.Now().UTC().Add(-72 * time.Hour) // n seconds apart, all in the past
	munis := []string{"sabadell", "terrassa", "vic", "olot"}
	for i := 0; i < n; i++ {
		ev := &contract.Event{ID: fmt.Sprintf("m-%d", i), Type: contract.TypeKPIMeasured,
			Time: base.Add(time.Duration(i) * time.Second), Municipality: munis[i%len(munis)], Publisher: "fcc",
			Data: &contract.KPIMeasured{Service: "waste", KPI: "on-time", Value: float64(i % 100)}}
		if err := pub.Publish(ctx, ev); err != nil {
			return fmt.Errorf("publish %s: %w", ev.ID, err)
		}
		if i%100 == 0 { // the same event re-sent without a broker message id
			b, _ := contract.Marshal(ev)
			if err := pub.PublishRaw(ctx, ev.Subject(), "", b); err != nil {
				return fmt.Errorf("publish a copy of %s: %w", ev.ID, err)
			}
		}
	}
	if err := pub.Wait(ctx); err != nil || failed.Load() > 0 {
		return fmt.Errorf("publish: %v (%d not acknowledged)", err, failed.Load())
	}
	return nil
}

func createStream(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	for _, sc := range []jetstream.StreamConfig{contract.ImportStreamConfig(), contract.StreamConfig(contract.Stream)} {
		if _, err := js.CreateOrUpdateStream(context.Background(), sc); err != nil {
			t.Fatal(err)
		}
	}
}

func assertExactlyOnce(t *testing.T, ch *chconn.Conn, n int) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("%d identities stored", n), 90*time.Second, func() bool {
		return count(t, ch, "SELECT uniqExact(municipality, publisher, id) FROM {db}.measurements") == uint64(n)
	})
	// Two replicas may have stored copies of one identity at the same
	// moment; the one that stored last merges them before acknowledging, so
	// the rows converge to one per identity.
	testenv.Eventually(t, fmt.Sprintf("one row per identity (%d)", n), 30*time.Second, func() bool {
		return count(t, ch, "SELECT count() FROM {db}.measurements") == uint64(n)
	})
	if got := count(t, ch, "SELECT count() FROM {db}.measurements FINAL"); got != uint64(n) {
		t.Fatalf("%d rows with FINAL for %d identities", got, n)
	}
}

// TestCrashExactlyOnce publishes 200,000 events while the ingest process is
// killed with SIGKILL at random moments and restarted; each identity must
// be stored exactly once. The log has how long storing took to resume
// after each kill (the restarted process releases the dead one's pin).
func TestCrashExactlyOnce(t *testing.T) {
	n := 200000
	if testing.Short() {
		n = 20000
	}
	bin := buildIngest(t)
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	createStream(t, js)

	published := make(chan error, 1)
	go func() { published <- publishMany(js, n) }()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	p := startIngest(t, bin, ns.ClientURL(), ch, "--batch-size", "2000")
	for kill := 0; kill < 3; kill++ {
		time.Sleep(time.Duration(500+rng.IntN(2500)) * time.Millisecond)
		killed := time.Now()
		p.kill()
		stored := rowsStored(ch)
		p = startIngest(t, bin, ns.ClientURL(), ch, "--batch-size", "2000")
		if stored < uint64(n) { // not all stored yet: time the resumption
			t.Logf("killed ingest (%d) with %d rows stored; storing resumed %s later", kill+1, stored,
				waitResumed(t, ch, killed).Round(time.Millisecond))
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dumpState(t, js) })
	assertExactlyOnce(t, ch, n)
}

// dumpState logs the stream and consumer state when a test failed.
func dumpState(t *testing.T, js jetstream.JetStream) {
	if !t.Failed() {
		return
	}
	ctx := context.Background()
	if s, err := js.Stream(ctx, contract.Stream); err == nil {
		info, _ := s.Info(ctx)
		t.Logf("stream: %+v", info.State)
	}
	if c, err := js.Consumer(ctx, contract.Stream, "ingest"); err == nil {
		info, _ := c.Info(ctx)
		t.Logf("consumer: pending %d ack-pending %d redelivered %d waiting %d delivered %+v ackfloor %+v",
			info.NumPending, info.NumAckPending, info.NumRedelivered, info.NumWaiting, info.Delivered, info.AckFloor)
	}
}

// TestTwoReplicas runs two ingest processes on the same consumer.
func TestTwoReplicas(t *testing.T) {
	n := 50000
	bin := buildIngest(t)
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	createStream(t, js)
	startIngest(t, bin, ns.ClientURL(), ch, "--batch-size", "500")
	startIngest(t, bin, ns.ClientURL(), ch, "--batch-size", "500")
	if err := publishMany(js, n); err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, ch, n)
}

// TestFaultStoppedDuringFlushes stops the ingest process with SIGTERM 50
// times under a steady load, each time while it is storing: every stop ends
// with exit status 0 (no panic, no error on the way out), and each identity
// is stored exactly once.
func TestFaultStoppedDuringFlushes(t *testing.T) {
	bin := buildIngest(t)
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	js := mustJS(t, testenv.Connect(t, ns))
	createStream(t, js)
	t.Cleanup(func() { dumpState(t, js) })

	sp := publishSteady(t, js, 3000)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	rows := func() uint64 { // 0 until the ingest has created the table
		var n uint64
		_ = ch.QueryRow(context.Background(), "SELECT count() FROM `"+ch.Database+"`.measurements").Scan(&n)
		return n
	}
	for stop := 0; stop < 50; stop++ {
		p := startIngest(t, bin, ns.ClientURL(), ch, "--batch-size", "200", "--flush-interval", "20ms")
		before := rows()
		testenv.Eventually(t, "the ingest storing", 30*time.Second, func() bool { return rows() > before })
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		p.stop(t)
		if t.Failed() {
			t.Fatalf("stop %d failed", stop+1)
		}
	}
	n := sp.stop(t)
	startIngest(t, bin, ns.ClientURL(), ch)
	assertExactlyOnce(t, ch, n)
	t.Logf("%d events, 50 stops with exit status 0", n)
}
