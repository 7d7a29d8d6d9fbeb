package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is a JetStream cluster of embedded NATS servers on loopback, each
// with its own client and route ports and store, that a test can stop and
// start again node by node.
type Cluster struct {
	t     testing.TB
	Name  string
	opts  []*server.Options
	Nodes []*server.Server // nil while a node is stopped
}

// NATSCluster starts n clustered JetStream servers (n >= 3 for a quorum
// that survives one loss) and waits until they have elected a meta leader
// that knows every peer.
// Every node is shut down when the test ends.
func NATSCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Name: fmt.Sprintf("c%d", time.Now().UnixNano()%1e6), Nodes: make([]*server.Server, n)}
	routes := make([]string, n)
	clientPorts, routePorts := make([]int, n), make([]int, n)
	for i := range n {
		clientPorts[i], routePorts[i] = FreePort(t), FreePort(t)
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", routePorts[i])
	}
	base := t.TempDir()
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: clientPorts[i],
			JetStream: true, StoreDir: filepath.Join(base, fmt.Sprintf("n%d", i+1)),
			NoSigs: true, MaxPayload: 1 << 20,
			Cluster: server.ClusterOpts{Name: c.Name, Host: "127.0.0.1", Port: routePorts[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		c.opts = append(c.opts, o)
	}
	for i := range n {
		c.Start(i)
	}
	t.Cleanup(func() {
		for i := range c.Nodes {
			c.Stop(i)
		}
	})
	// A leader alone is not enough to place a stream on every node: it
	// must also have heard from every peer (their JetStream statistics),
	// or a stream of n replicas finds "no suitable peers for placement".
	Eventually(t, "a JetStream meta leader that knows every peer", 30*time.Second, func() bool {
		for _, s := range c.Nodes {
			if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == n {
				return true
			}
		}
		return false
	})
	return c
}

// Start starts node i (again) with its ports and store.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	if c.Nodes[i] != nil {
		return
	}
	for attempt := 0; attempt < 50; attempt++ {
		o := *c.opts[i]
		s, err := server.NewServer(&o)
		if err != nil {
			c.t.Fatalf("nats node %d: %v", i+1, err)
		}
		s.Start()
		if s.ReadyForConnections(10 * time.Second) {
			c.Nodes[i] = s
			return
		}
		s.Shutdown() // a port just released may take a moment to be free
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("nats node %d not ready", i+1)
}

// Stop shuts node i down.
func (c *Cluster) Stop(i int) {
	if s := c.Nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.Nodes[i] = nil
	}
}

// URLs is every node's client URL, comma-separated, as services take them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.opts))
	for i, o := range c.opts {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", o.Port)
	}
	return strings.Join(urls, ",")
}

// Index returns the node named name (a server name such as "n2"), or -1.
func (c *Cluster) Index(name string) int {
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	return -1
}

// StreamLeader returns the index of the node leading stream, and its
// replicas that are current.
func StreamLeader(ctx context.Context, js jetstream.JetStream, c *Cluster, stream string) (leader int, current int, err error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return -1, 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return -1, 0, err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return -1, 0, fmt.Errorf("stream %s has no leader", stream)
	}
	current = 1
	for _, r := range info.Cluster.Replicas {
		if r.Current && !r.Offline {
			current++
		}
	}
	return c.Index(info.Cluster.Leader), current, nil
}
