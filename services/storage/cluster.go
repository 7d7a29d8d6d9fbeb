package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/assoliment/assoliment/services/platform/chconn"
)

// Cluster mode (CLICKHOUSE_CLUSTER): the same schema on the replicas of a
// ClickHouse cluster. Every MergeTree table of the migrations becomes its
// Replicated… twin, registered in ZooKeeper (or ClickHouse Keeper) under
// ZooKeeperPath, so a row inserted on one replica reaches the others. The
// rollups are replicated tables too: a materialized view fires only on the
// replica that received the insert, and the rows it writes into its target
// reach the other replicas as parts, like any insert.
//
// Migrations are applied on each server, not ON CLUSTER: every service
// migrates every replica it can reach at start, and the ingest service
// every replica it moves to or finds back. An ON CLUSTER statement waits
// for every replica of the cluster, and with one of them lost it fails
// after distributed_ddl_task_timeout (180 s), so a service could not start
// while a machine is down. The steps were already written to run twice and
// concurrently, and a replicated table created on a second server joins
// the first's data. The version table (schema_migrations) therefore stays
// a plain table of each server: it records what that server has, and a
// replica that was down while a migration shipped still finds it missing.
//
// What stays local to one server: the identity index (Set tables, kept
// complete on every replica by the ingest service), the evaluator's SLA
// target tables (Join, made and dropped within one evaluation on the
// server it runs on) and the version table.

// ZooKeeperPath is where the replicas of table in database meet: one path
// per shard ({shard} macro) and table.
func ZooKeeperPath(database, table string) string {
	return "/clickhouse/tables/{shard}/" + database + "/" + table
}

var (
	createTable = regexp.MustCompile(`(?is)^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)\b`)
	mergeEngine = regexp.MustCompile(`(?i)ENGINE\s*=\s*([A-Za-z]*MergeTree)\b(\s*\(([^()]*)\))?`)
)

// ReplicatedSQL returns sql with the MergeTree engine of a CREATE TABLE
// turned into its replicated twin in database (ReplacingMergeTree(version)
// becomes ReplicatedReplacingMergeTree('<path>', '{replica}', version));
// other statements, other engines and replicated engines are returned as
// they are.
func ReplicatedSQL(sql, database string) string {
	m := createTable.FindStringSubmatch(sql)
	if m == nil {
		return sql
	}
	table := m[1]
	loc := mergeEngine.FindStringSubmatchIndex(sql)
	if loc == nil {
		return sql
	}
	engine := sql[loc[2]:loc[3]]
	if strings.HasPrefix(strings.ToLower(engine), "replicated") {
		return sql
	}
	args := []string{"'" + ZooKeeperPath(database, table) + "'", "'{replica}'"}
	if loc[6] >= 0 {
		if a := strings.TrimSpace(sql[loc[6]:loc[7]]); a != "" {
			args = append(args, a)
		}
	}
	return sql[:loc[0]] + "ENGINE = Replicated" + engine + "(" + strings.Join(args, ", ") + ")" + sql[loc[1]:]
}

// MacrosRow is one macro of the server (system.macros).
type MacrosRow struct {
	Macro        string `ch:"macro"`
	Substitution string `ch:"substitution"`
}

// Macros reads the server's macros (MacrosRow).
func Macros() Query {
	return Query{SQL: "SELECT macro, substitution FROM system.macros"}
}

// ClusterHosts counts the replicas the server lists for cluster (countRow
// shape: n).
func ClusterHosts(cluster string) Query {
	return Query{SQL: "SELECT count() AS n FROM system.clusters WHERE cluster = ?", Args: []any{cluster}}
}

// Replica names the server within cluster: its {replica} macro. It fails,
// naming CLICKHOUSE_CLUSTER, when the server does not know the cluster or
// lacks the {shard} or {replica} macro.
func Replica(ctx context.Context, e Engine, cluster string) (string, error) {
	var hosts []countRow
	if err := e.Select(ctx, &hosts, ClusterHosts(cluster)); err != nil {
		return "", fmt.Errorf("read system.clusters: %w", err)
	}
	if len(hosts) != 1 || hosts[0].N == 0 {
		return "", fmt.Errorf("CLICKHOUSE_CLUSTER=%s: the server knows no such cluster (remote_servers of its configuration, system.clusters)", cluster)
	}
	var macros []MacrosRow
	if err := e.Select(ctx, &macros, Macros()); err != nil {
		return "", fmt.Errorf("read system.macros: %w", err)
	}
	have := map[string]string{}
	for _, m := range macros {
		have[m.Macro] = m.Substitution
	}
	for _, need := range []string{"shard", "replica"} {
		if have[need] == "" {
			return "", fmt.Errorf("CLICKHOUSE_CLUSTER=%s: the server has no {%s} macro (macros of its configuration), which replicated tables need", cluster, need)
		}
	}
	return have["replica"], nil
}

// MigrateReplica applies the migrations, with replicated engines, on the
// one server e runs on, a replica of cluster; database is e's database.
//
// A replica created after others (a new or rebuilt server) must create
// each table in the shape the others have now, or ClickHouse refuses it
// ("Table structure in ZooKeeper is too different"): replaying the CREATE
// of migration 1 would lack the columns later migrations added. So a table
// whose ZooKeeper path already holds replicas is created with the columns
// recorded there; the steps that add columns then find them and are
// skipped.
func MigrateReplica(ctx context.Context, e Engine, cluster, database string) error {
	if _, err := Replica(ctx, e, cluster); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	shard, err := Shard(ctx, e)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	var failed error
	err = migrate(ctx, e, func(sql string) string {
		out := ReplicatedSQL(sql, database)
		m := createTable.FindStringSubmatch(out)
		if out == sql || m == nil || failed != nil {
			return out
		}
		var cols []zkValue
		path := strings.ReplaceAll(ZooKeeperPath(database, m[1]), "{shard}", shard)
		if err := e.Select(ctx, &cols, Query{SQL: "SELECT value FROM system.zookeeper WHERE path = ? AND name = 'columns'", Args: []any{path}}); err != nil {
			// No such path yet (ClickHouse answers an error for a missing
			// node): the first replica, created as the migration says.
			return out
		}
		if len(cols) != 1 {
			return out
		}
		shaped, err := withColumns(out, cols[0].Value)
		if err != nil {
			failed = fmt.Errorf("schema: table %s: columns in ZooKeeper at %s: %w", m[1], path, err)
			return out
		}
		return shaped
	})
	if failed != nil {
		return failed
	}
	return err
}

type zkValue struct {
	Value string `ch:"value"`
}

// withColumns replaces the column list of a CREATE TABLE with the columns
// of a ReplicatedMergeTree's "columns" node in ZooKeeper ("columns format
// version: 1", "N columns:", then one "`name` Type [DEFAULT|MATERIALIZED
// expression]" a line).
func withColumns(create, node string) (string, error) {
	lines := strings.Split(strings.TrimSpace(node), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "columns format version") || !strings.HasSuffix(lines[1], "columns:") {
		return "", fmt.Errorf("unexpected format %q", node)
	}
	open := strings.Index(create, "(")
	depth, end := 0, -1
	for i := open; i >= 0 && i < len(create); i++ {
		switch create[i] {
		case '(':
			depth++
		case ')':
			depth--
		}
		if depth == 0 {
			end = i
			break
		}
	}
	if open < 0 || end < 0 {
		return "", errors.New("no column list in the statement")
	}
	cols := make([]string, 0, len(lines)-2)
	for _, l := range lines[2:] {
		cols = append(cols, unescape(l))
	}
	return create[:open+1] + "\n    " + strings.Join(cols, ",\n    ") + "\n" + create[end:], nil
}

// unescape undoes the backslash escapes of the node's text (its default
// expressions are written with \' for a quote).
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MigrateServers applies the migrations where c's service writes: on c's
// one server with plain tables when cluster is empty; else on every
// replica of c's list that answers, with replicated engines. A replica
// that does not answer is logged and left for later (the ingest service
// migrates each replica again before it uses it); the server c is on must
// succeed.
func MigrateServers(ctx context.Context, c *chconn.Conn, cluster string, log *slog.Logger) error {
	if cluster == "" {
		return Migrate(ctx, NewConn(c))
	}
	if err := MigrateReplica(ctx, NewConn(c), cluster, c.Database); err != nil {
		return fmt.Errorf("clickhouse %s: %w", c.Server(), err)
	}
	var errs []error
	for _, addr := range c.Addrs() {
		if addr == c.Server() {
			continue
		}
		if err := MigrateOn(ctx, c, addr, cluster); err != nil {
			log.Warn("clickhouse: replica not migrated now; it will be before it is used", "addr", addr, "err", err)
			errs = append(errs, err)
		}
	}
	if len(errs) == len(c.Addrs()) {
		return errors.Join(errs...)
	}
	return nil
}

// MigrateOn applies the migrations on the replica at addr of c's list.
func MigrateOn(ctx context.Context, c *chconn.Conn, addr, cluster string) error {
	one, err := c.OpenOn(ctx, addr)
	if err != nil {
		return err
	}
	defer one.Close()
	if err := MigrateReplica(ctx, NewConn(one), cluster, one.Database); err != nil {
		return fmt.Errorf("clickhouse %s: %w", addr, err)
	}
	return nil
}
