package testenv

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/platform/chconn"
)

// ClusterName is the ClickHouse cluster of ClickHouseCluster, as the
// services' CLICKHOUSE_CLUSTER names it.
const ClusterName = "assoliment"

// ZooKeeperJar is the server of Debian's package zookeeper.
const ZooKeeperJar = "/usr/share/java/zookeeper.jar"

// CHCluster is a ZooKeeper server and ClickHouse servers that are the
// replicas of one shard of the cluster ClusterName, every process on
// loopback with its own ports and data folder, started from the Debian
// packages' binaries (clickhouse-server, zookeeper). A test stops, kills
// and starts replicas to play the loss of a machine.
type CHCluster struct {
	t         testing.TB
	Replicas  []*CHServer
	ZooKeeper *exec.Cmd
	zkPort    int
}

// CHServer is one clickhouse-server process of a CHCluster.
type CHServer struct {
	Name string // its {replica} macro: r1, r2…
	Addr string // native protocol, 127.0.0.1:port
	dir  string
	cmd  *exec.Cmd
}

// ClickHouseCluster starts ZooKeeper and n ClickHouse servers replicating
// one shard (macros shard=01, replica=r1…rn) and waits until every one
// answers and reaches ZooKeeper. Everything is stopped when the test ends;
// each ClickHouse server must exit with status 0 on SIGTERM. It fails,
// never skips, when the packages are missing.
func ClickHouseCluster(t testing.TB, n int) *CHCluster {
	t.Helper()
	for _, need := range []string{"clickhouse-server", "java"} {
		if _, err := exec.LookPath(need); err != nil {
			t.Fatalf("this test needs %s (make deps installs the Debian packages clickhouse-server and zookeeper): %v", need, err)
		}
	}
	if _, err := os.Stat(ZooKeeperJar); err != nil {
		t.Fatalf("this test needs ZooKeeper from the Debian package zookeeper (make deps installs it): %v", err)
	}
	base, err := os.MkdirTemp("/var/tmp", "assoliment-chcluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("KEEP_TEST_DB") == "" {
			_ = os.RemoveAll(base)
		}
	})
	c := &CHCluster{t: t, zkPort: FreePort(t)}
	c.startZooKeeper(filepath.Join(base, "zookeeper"))
	ports := make([]int, n)
	for i := range n {
		ports[i] = FreePort(t)
	}
	var replicas strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&replicas, "<replica><host>127.0.0.1</host><port>%d</port></replica>", p)
	}
	for i := range n {
		s := &CHServer{Name: fmt.Sprintf("r%d", i+1), Addr: fmt.Sprintf("127.0.0.1:%d", ports[i]), dir: filepath.Join(base, fmt.Sprintf("r%d", i+1))}
		for _, d := range []string{"data", "tmp", "log", "user_files"} {
			if err := os.MkdirAll(filepath.Join(s.dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		conf := fmt.Sprintf(serverConfig, s.dir, ports[i], FreePort(t), c.zkPort, ClusterName, replicas.String(), s.Name)
		if err := os.WriteFile(filepath.Join(s.dir, "config.xml"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, "users.xml"), []byte(usersConfig), 0o644); err != nil {
			t.Fatal(err)
		}
		c.Replicas = append(c.Replicas, s)
	}
	t.Cleanup(func() {
		for i := range c.Replicas {
			c.Stop(i)
		}
		c.stopZooKeeper()
	})
	for i := range c.Replicas {
		c.Start(i)
	}
	return c
}

// Addrs is every replica's address, comma-separated, as CLICKHOUSE_ADDR
// takes them.
func (c *CHCluster) Addrs() string {
	addrs := make([]string, len(c.Replicas))
	for i, s := range c.Replicas {
		addrs[i] = s.Addr
	}
	return strings.Join(addrs, ",")
}

// Start starts replica i (again, on its data) and waits until it answers
// and sees ZooKeeper.
func (c *CHCluster) Start(i int) {
	c.t.Helper()
	s := c.Replicas[i]
	if s.cmd != nil {
		return
	}
	out, err := os.OpenFile(filepath.Join(s.dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	s.cmd = exec.Command("clickhouse-server", "--config-file="+filepath.Join(s.dir, "config.xml"))
	s.cmd.Stdout, s.cmd.Stderr = out, out
	dieWithTest(s.cmd)
	if err := s.cmd.Start(); err != nil {
		c.t.Fatalf("start clickhouse replica %s: %v", s.Name, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := s.ping()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("clickhouse replica %s at %s not ready within 60 s: %v (logs in %s)", s.Name, s.Addr, err, filepath.Join(s.dir, "log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ping checks that the server answers and reaches ZooKeeper.
func (s *CHServer) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := chconn.Open(ctx, chconn.Options{Addr: s.Addr, Database: "default", User: "default"})
	if err != nil {
		return err
	}
	defer conn.Close()
	var n uint64
	return conn.QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&n)
}

// Stop stops replica i with SIGTERM and fails the test unless it exits
// with status 0 within 60 s.
func (c *CHCluster) Stop(i int) {
	c.t.Helper()
	s := c.Replicas[i]
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Errorf("clickhouse replica %s stopped with %v on SIGTERM", s.Name, err)
		}
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
		c.t.Errorf("clickhouse replica %s did not stop within 60 s of SIGTERM; killed", s.Name)
	}
	s.cmd = nil
}

// Kill ends replica i with SIGKILL, as a machine lost at once.
func (c *CHCluster) Kill(i int) {
	s := c.Replicas[i]
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Conn opens database on replica i (creating it there when missing),
// closed when the test ends.
func (c *CHCluster) Conn(i int, database string) *chconn.Conn {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := chconn.Open(ctx, chconn.Options{Addr: c.Replicas[i].Addr, Database: database, User: "default"})
	if err != nil {
		c.t.Fatalf("clickhouse replica %s: %v", c.Replicas[i].Name, err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn
}

// Database is a fresh database name for a test on the cluster.
func Database() string { return fmt.Sprintf("test_%d_%06d", time.Now().Unix(), rand.IntN(1000000)) }

func (c *CHCluster) startZooKeeper(dir string) {
	c.t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		c.t.Fatal(err)
	}
	cfg := filepath.Join(dir, "zoo.cfg")
	conf := fmt.Sprintf("tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\n"+
		"admin.enableServer=false\n4lw.commands.whitelist=ruok\n", filepath.Join(dir, "data"), c.zkPort)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		c.t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "zookeeper.log"))
	if err != nil {
		c.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command("java", "-Xmx256m", "-cp", ZooKeeperJar, "org.apache.zookeeper.server.ZooKeeperServerMain", cfg)
	cmd.Stdout, cmd.Stderr = out, out
	dieWithTest(cmd)
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start zookeeper: %v", err)
	}
	c.ZooKeeper = cmd
	deadline := time.Now().Add(60 * time.Second)
	for !zooKeeperOK(c.zkPort) {
		if time.Now().After(deadline) {
			c.stopZooKeeper()
			c.t.Fatalf("zookeeper on 127.0.0.1:%d not ready within 60 s (log in %s)", c.zkPort, dir)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopZooKeeper ends the ZooKeeper server. The JVM answers SIGTERM with
// status 143 (128 + SIGTERM) after its shutdown hooks, which is its clean
// stop; anything else fails the test.
func (c *CHCluster) stopZooKeeper() {
	if c.ZooKeeper == nil {
		return
	}
	_ = c.ZooKeeper.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.ZooKeeper.Wait() }()
	select {
	case <-done:
		if code := c.ZooKeeper.ProcessState.ExitCode(); code != 0 && code != 143 {
			c.t.Errorf("zookeeper stopped with %s on SIGTERM", c.ZooKeeper.ProcessState)
		}
	case <-time.After(30 * time.Second):
		_ = c.ZooKeeper.Process.Kill()
		<-done
		c.t.Errorf("zookeeper did not stop within 30 s of SIGTERM; killed")
	}
	c.ZooKeeper = nil
}

// zooKeeperOK asks the server "ruok" (a four-letter command).
func zooKeeperOK(port int) bool {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte("ruok")); err != nil {
		return false
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.HasPrefix(line, "imok")
}

// serverConfig is one replica's configuration: folder, native port,
// interserver port (replicas fetch parts from each other over it),
// ZooKeeper port, cluster name, the cluster's replicas, replica macro.
const serverConfig = `<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>%[1]s/log/clickhouse-server.log</log>
        <errorlog>%[1]s/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>%[2]d</tcp_port>
    <interserver_http_port>%[3]d</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>%[1]s/data/</path>
    <tmp_path>%[1]s/tmp/</tmp_path>
    <user_files_path>%[1]s/user_files/</user_files_path>
    <users_config>%[1]s/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <zookeeper>
        <node><host>127.0.0.1</host><port>%[4]d</port></node>
        <session_timeout_ms>10000</session_timeout_ms>
    </zookeeper>
    <remote_servers>
        <%[5]s><shard><internal_replication>true</internal_replication>%[6]s</shard></%[5]s>
    </remote_servers>
    <macros><shard>01</shard><replica>%[7]s</replica></macros>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
</yandex>
`

const usersConfig = `<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
