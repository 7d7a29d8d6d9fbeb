package chconn_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// TestFailover opens a connection on the two replicas of a cluster: it
// uses the first, moves to the second when the first stops, logs both,
// and stays on the second when the first is back (the first may be
// catching up on what was written meanwhile).
func TestFailover(t *testing.T) {
	c := testenv.ClickHouseCluster(t, 2)
	ctx := context.Background()
	var logs bytes.Buffer
	conn, err := chconn.Open(ctx, chconn.Options{Addr: c.Addrs(), Database: testenv.Database(), User: "default",
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	replica := func() string {
		var name string
		if err := conn.QueryRow(ctx, "SELECT substitution FROM system.macros WHERE macro = 'replica'").Scan(&name); err != nil {
			return "error: " + err.Error()
		}
		return name
	}
	if r := replica(); r != "r1" || conn.Server() != c.Replicas[0].Addr || conn.Switches() != 0 {
		t.Fatalf("first server: replica %s, server %s, switches %d", r, conn.Server(), conn.Switches())
	}
	c.Stop(0)
	testenv.Eventually(t, "queries answered by the second replica", 30*time.Second, func() bool { return replica() == "r2" })
	if conn.Server() != c.Replicas[1].Addr || conn.Switches() != 1 {
		t.Fatalf("after the loss: server %s, switches %d", conn.Server(), conn.Switches())
	}
	c.Start(0)
	for range 20 {
		if r := replica(); r != "r2" {
			t.Fatalf("moved back to %s once the first replica returned", r)
		}
	}
	for _, want := range []string{"clickhouse: using server", "addr=" + c.Replicas[0].Addr, "clickhouse: server lost; using the next one", "addr=" + c.Replicas[1].Addr} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	// Every server of the list gets the database, so a replica can be
	// switched to.
	one, err := conn.OpenOn(ctx, c.Replicas[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	one.Close()
}
