package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The identity index in cluster mode. A Set table lives in one server's
// memory and files; the ingest service looks identities up on the replica
// it is connected to, and a writer may be connected to any replica, so
// every replica's index must hold every stored identity. A writer records
// each batch's identities in the index of every replica before inserting
// the rows (on its own replica it must succeed; on the others it tries),
// and for every replica it could not reach it first writes a mark into
// IndexMarks, a replicated table, so that every process sees it. A replica
// with a mark later than its latest repair is stale: before anyone looks
// identities up on it, and as soon as it answers and has fetched every
// part the others committed, its index is filled again from its own event
// tables (a union: a Set only grows) and a repair covering that mark is
// recorded.

// IndexMarks records, per replica ({replica} macro), the latest instant a
// writer could not record identities in its index (repaired 0) and the
// latest mark a repair covers (repaired 1).
const IndexMarks = "identity_index_marks"

// IndexMarksSQL creates IndexMarks on one server; CreateIndexMarks is its
// replicated form.
const IndexMarksSQL = "CREATE TABLE IF NOT EXISTS " + IndexMarks +
	" (replica String, repaired UInt8, at UInt64) ENGINE = ReplacingMergeTree(at) ORDER BY (replica, repaired)"

// CreateIndexMarks creates IndexMarks, replicated, in database.
func CreateIndexMarks(database string) Query {
	return Query{SQL: ReplicatedSQL(IndexMarksSQL, database)}
}

// IndexMarkColumns are the columns IndexMarkRow fills.
var IndexMarkColumns = []string{"replica", "repaired", "at"}

// IndexMarkRow is a mark of replica at the instant at (nanoseconds since
// 1970), or with repaired the record of a repair covering the marks up
// to at.
func IndexMarkRow(replica string, repaired bool, at uint64) []any {
	r := uint8(0)
	if repaired {
		r = 1
	}
	return []any{replica, r, at}
}

// IndexMark is a replica's latest mark and latest repair (0 for none).
type IndexMark struct {
	Replica  string `ch:"replica"`
	Marked   uint64 `ch:"marked_at"`
	Repaired uint64 `ch:"repaired_at"`
}

// Stale reports whether the replica missed identities no repair has
// filled in since.
func (m IndexMark) Stale() bool { return m.Marked > m.Repaired }

// ReadIndexMarks reads every replica's IndexMark.
func ReadIndexMarks() Query {
	return Query{SQL: "SELECT replica, maxIf(at, repaired = 0) AS marked_at, maxIf(at, repaired = 1) AS repaired_at FROM " + IndexMarks + " GROUP BY replica"}
}

// MarkNow is the instant of a mark written now.
func MarkNow() uint64 { return uint64(time.Now().UnixNano()) }

// ReplicaCaughtUp says whether the server's replicated tables of the
// database hold every part the other replicas had committed when it was
// asked (CaughtUpRow): every entry of the replication log read and done.
func ReplicaCaughtUp() Query {
	return Query{SQL: "SELECT toUInt64(count()) AS tables, toUInt64(countIf(queue_size > 0 OR log_max_index > 0 AND log_pointer <= log_max_index OR is_readonly)) AS behind " +
		"FROM system.replicas WHERE database = currentDatabase()"}
}

// CaughtUpRow is ReplicaCaughtUp's answer.
type CaughtUpRow struct {
	Tables uint64 `ch:"tables"`
	Behind uint64 `ch:"behind"`
}

// ReplicaNames lists the replicas ZooKeeper holds for table of database
// in shard (TableName rows), through the current server.
func ReplicaNames(database, shard, table string) Query {
	path := strings.ReplaceAll(ZooKeeperPath(database, table), "{shard}", shard) + "/replicas"
	return Query{SQL: "SELECT name FROM system.zookeeper WHERE path = ?", Args: []any{path}}
}

// Shard reads the server's {shard} macro.
func Shard(ctx context.Context, e Engine) (string, error) {
	var macros []MacrosRow
	if err := e.Select(ctx, &macros, Macros()); err != nil {
		return "", fmt.Errorf("read system.macros: %w", err)
	}
	for _, m := range macros {
		if m.Macro == "shard" {
			return m.Substitution, nil
		}
	}
	return "", errors.New("the server has no {shard} macro")
}
