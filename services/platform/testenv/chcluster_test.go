package testenv_test

import (
	"context"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

type chconnT struct{ c *chconn.Conn }

func (x *chconnT) count(ctx context.Context) uint64 {
	var n uint64
	_ = x.c.QueryRow(ctx, "SELECT count() FROM t").Scan(&n)
	return n
}

// TestClickHouseCluster checks the harness itself: a row inserted on one
// replica of a ReplicatedMergeTree table reaches the other, also when
// that one was stopped at the time and started again.
func TestClickHouseCluster(t *testing.T) {
	c := testenv.ClickHouseCluster(t, 2)
	ctx := context.Background()
	db := testenv.Database()
	conns := []*chconnT{{c.Conn(0, db)}, {c.Conn(1, db)}}
	for _, x := range conns {
		if err := x.c.Exec(ctx, "CREATE TABLE IF NOT EXISTS t (n UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/"+db+"/t', '{replica}') ORDER BY n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := conns[0].c.Exec(ctx, "INSERT INTO t SELECT 1"); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the row on the second replica", 30*time.Second, func() bool { return conns[1].count(ctx) == 1 })
	c.Stop(1)
	if err := conns[0].c.Exec(ctx, "INSERT INTO t SELECT 2"); err != nil {
		t.Fatal(err)
	}
	c.Start(1)
	second := &chconnT{c.Conn(1, db)}
	testenv.Eventually(t, "the row written while the second replica was stopped", 60*time.Second, func() bool { return second.count(ctx) == 2 })
}
