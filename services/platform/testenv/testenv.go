// Package testenv gives tests the real servers they need: an embedded NATS
// server with JetStream, and a fresh database on the ClickHouse server named
// by CLICKHOUSE_ADDR (default 127.0.0.1:9000, started by `make test`).
// A test that cannot reach ClickHouse fails with a clear message; it never
// skips.
package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/platform/chconn"
)

// NATS starts an embedded JetStream server on a free loopback port, with
// its store in a temporary folder; it is shut down when the test ends.
func NATS(t testing.TB) *server.Server {
	t.Helper()
	return NATSWith(t, t.TempDir())
}

// NATSWith starts an embedded JetStream server with its store in dir, so a
// test can restart a server on the same data.
func NATSWith(t testing.TB, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir,
		NoSigs: true, MaxPayload: 1 << 20,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready within 10s")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// NATSOn starts an embedded JetStream server on a fixed loopback port with
// its store in dir, so a test can shut it down and start it again where its
// clients expect it (a port just released may take a moment to be free).
func NATSOn(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	for i := 0; i < 50; i++ {
		s, err := server.NewServer(&server.Options{
			Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
			NoSigs: true, MaxPayload: 1 << 20,
		})
		if err != nil {
			t.Fatalf("nats server: %v", err)
		}
		s.Start()
		if s.ReadyForConnections(5 * time.Second) {
			t.Cleanup(s.Shutdown)
			return s
		}
		s.Shutdown()
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("nats server on port %d not ready", port)
	return nil
}

// Connect returns a client connection to s, closed when the test ends.
func Connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatalf("nats connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on a client connection to s,
// closed when the test ends.
func JetStream(t testing.TB, s *server.Server) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(Connect(t, s))
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

// ClickHouseAddr is the server tests use.
func ClickHouseAddr() string {
	if a := os.Getenv("CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:9000"
}

// ClickHouse creates a fresh database for the test and drops it at the end.
func ClickHouse(t testing.TB) *chconn.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db := fmt.Sprintf("test_%d_%06d", time.Now().Unix(), rand.IntN(1000000))
	c, err := chconn.Open(ctx, chconn.Options{Addr: ClickHouseAddr(), Database: db, User: "default"})
	if err != nil {
		t.Fatalf("this test needs a ClickHouse server at %s (run `make test`, or scripts/clickhouse.sh start): %v", ClickHouseAddr(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if os.Getenv("KEEP_TEST_DB") == "" {
			_ = c.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
		}
		c.Close()
	})
	return c
}
