package service_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

func rowsStored(ch *chconn.Conn) uint64 {
	var n uint64 // 0 until an ingest has created the table
	_ = ch.QueryRow(context.Background(), "SELECT count() FROM "+ch.Table("measurements")).Scan(&n)
	return n
}

// waitResumed returns how long after lost the stored rows grew again.
func waitResumed(t *testing.T, ch *chconn.Conn, lost time.Time) time.Duration {
	t.Helper()
	before := rowsStored(ch)
	testenv.Eventually(t, "ingestion resumed after the loss", 30*time.Second, func() bool { return rowsStored(ch) > before })
	return time.Since(lost)
}

// TestFaultNATSClusterLeaderStopped stops the server leading the main
// stream while a publisher and two ingest replicas run against a
// three-node cluster with three replicas per stream: ingestion resumes
// within 10 s, nothing acknowledged to the publisher is lost, nothing is
// stored twice, and once the server is back the stream has three current
// replicas again.
func TestFaultNATSClusterLeaderStopped(t *testing.T) {
	c := testenv.NATSCluster(t, 3)
	ch := testenv.ClickHouse(t)
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js := mustJS(t, nc)
	ctx := context.Background()
	for range 2 {
		ingestIn(t, c.URLs(), testenv.ClickHouseAddr(), ch, os.Stderr, "--stream-replicas", "3")
	}
	testenv.Eventually(t, "streams with three replicas", 30*time.Second, func() bool {
		_, current, err := testenv.StreamLeader(ctx, js, c, contract.Stream)
		return err == nil && current == 3
	})
	sp := publishSteady(t, js, 1000)
	testenv.Eventually(t, "events stored", 30*time.Second, func() bool { return rowsStored(ch) > 2000 })

	leader, _, err := testenv.StreamLeader(ctx, js, c, contract.Stream)
	if err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	c.Stop(leader)
	resumed := waitResumed(t, ch, lost)
	t.Logf("stopped n%d, the leader of %s; ingestion resumed %s later", leader+1, contract.Stream, resumed.Round(time.Millisecond))
	if resumed > 10*time.Second {
		t.Errorf("ingestion resumed %s after the loss, want within 10 s", resumed)
	}
	time.Sleep(2 * time.Second)
	c.Start(leader)
	n := sp.stop(t)
	assertExactlyOnce(t, ch, n)
	testenv.Eventually(t, "three current replicas after the restart", 60*time.Second, func() bool {
		_, current, err := testenv.StreamLeader(ctx, js, c, contract.Stream)
		return err == nil && current == 3
	})
	t.Logf("published %d distinct events, all acknowledged (%d sent again after a failure); stored %d rows, %d identities",
		n, sp.retried.Load(), count(t, ch, "SELECT count() FROM {db}.measurements"),
		count(t, ch, "SELECT uniqExact(municipality, publisher, id) FROM {db}.measurements"))
}

// natsNode is one natsd process of a cluster, started from its own
// configuration file so that it can be killed and started again.
type natsNode struct {
	name, conf string
	cmd        *exec.Cmd
}

func (n *natsNode) start(t *testing.T, bin string) {
	t.Helper()
	n.cmd = exec.Command(bin, "--config", n.conf)
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

func (n *natsNode) kill() {
	if n.cmd != nil && n.cmd.ProcessState == nil {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		_ = n.cmd.Wait()
	}
}

// TestFaultNATSClusterNodeKilled kills with SIGKILL the natsd process
// leading the main stream of a three-node cluster, each node started from
// the shipped deploy/nats/cluster configuration, while a publisher and two
// ingest replicas run, then starts it again: ingestion resumes within 10 s,
// nothing acknowledged is lost or stored twice, and the stream returns to
// three current replicas.
func TestFaultNATSClusterNodeKilled(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "natsd")
	build := exec.Command("go", "build", "-o", bin, "github.com/assoliment/assoliment/services/platform/cmd/natsd")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("build natsd: %v", err)
	}
	dir := t.TempDir()
	const size = 3
	clients, routes := make([]int, size), make([]string, size)
	for i := range size {
		clients[i] = testenv.FreePort(t)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", testenv.FreePort(t))
	}
	// The shipped cluster configuration, with loopback ports and stores of
	// the test's own instead of the compose host names.
	shipped, err := os.ReadFile("../../../deploy/nats/cluster/nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*natsNode, size)
	var urls []string
	for i := range size {
		n := &natsNode{name: fmt.Sprintf("nats-%d", i+1), conf: filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1))}
		conf := string(shipped)
		for old, repl := range map[string]string{
			"$NATS_SERVER_NAME":    n.name,
			"listen: 0.0.0.0:4222": fmt.Sprintf("listen: 127.0.0.1:%d", clients[i]),
			"http: 0.0.0.0:8222":   fmt.Sprintf("http: 127.0.0.1:%d", testenv.FreePort(t)),
			"listen: 0.0.0.0:1883": fmt.Sprintf("listen: 127.0.0.1:%d", testenv.FreePort(t)),
			"listen: 0.0.0.0:6222": "listen: " + strings.TrimPrefix(routes[i], "nats://"),
			"nats://nats-1:6222":   routes[0],
			"nats://nats-2:6222":   routes[1],
			"nats://nats-3:6222":   routes[2],
			`store_dir: "/data"`:   fmt.Sprintf("store_dir: %q", filepath.Join(dir, n.name)),
		} {
			if !strings.Contains(conf, old) {
				t.Fatalf("the shipped cluster configuration no longer contains %s", old)
			}
			conf = strings.ReplaceAll(conf, old, repl)
		}
		if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		n.start(t, bin)
		nodes[i] = n
		t.Cleanup(n.kill)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clients[i]))
	}
	ch := testenv.ClickHouse(t)
	nc, err := nats.Connect(strings.Join(urls, ","), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js := mustJS(t, nc)
	ctx := context.Background()
	leaderOf := func() (string, int, error) {
		s, err := js.Stream(ctx, contract.Stream)
		if err != nil {
			return "", 0, err
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
			return "", 0, fmt.Errorf("no leader: %v", err)
		}
		current := 1
		for _, r := range info.Cluster.Replicas {
			if r.Current && !r.Offline {
				current++
			}
		}
		return info.Cluster.Leader, current, nil
	}
	testenv.Eventually(t, "the cluster answering JetStream requests", 60*time.Second, func() bool {
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
	for range 2 {
		ingestIn(t, strings.Join(urls, ","), testenv.ClickHouseAddr(), ch, os.Stderr, "--stream-replicas", "3")
	}
	testenv.Eventually(t, "streams with three replicas", 60*time.Second, func() bool {
		_, current, err := leaderOf()
		return err == nil && current == 3
	})
	sp := publishSteady(t, js, 1000)
	testenv.Eventually(t, "events stored", 30*time.Second, func() bool { return rowsStored(ch) > 2000 })

	leader, _, err := leaderOf()
	if err != nil {
		t.Fatal(err)
	}
	var victim *natsNode
	for _, n := range nodes {
		if n.name == leader {
			victim = n
		}
	}
	lost := time.Now()
	victim.kill()
	resumed := waitResumed(t, ch, lost)
	t.Logf("killed %s, the leader of %s; ingestion resumed %s later", leader, contract.Stream, resumed.Round(time.Millisecond))
	if resumed > 10*time.Second {
		t.Errorf("ingestion resumed %s after the loss, want within 10 s", resumed)
	}
	time.Sleep(2 * time.Second)
	victim.start(t, bin)
	n := sp.stop(t)
	assertExactlyOnce(t, ch, n)
	testenv.Eventually(t, "three current replicas after the restart", 60*time.Second, func() bool {
		_, current, err := leaderOf()
		return err == nil && current == 3
	})
	t.Logf("published %d distinct events, all acknowledged (%d sent again after a failure); stored %d rows, %d identities",
		n, sp.retried.Load(), count(t, ch, "SELECT count() FROM {db}.measurements"),
		count(t, ch, "SELECT uniqExact(municipality, publisher, id) FROM {db}.measurements"))
}
