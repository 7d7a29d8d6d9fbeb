// Package storage owns the ClickHouse side of the platform: the tables and
// their columns, the versioned migrations that create and change them, and
// every query the ingest service and the evaluator run, as builders that
// return SQL and arguments. Results scan into named structs.
//
// Queries name tables without a database: every connection's current
// database is the platform's (chconn opens them so). Lists of values that
// come from events (identities, names) never go into SQL text; they travel
// as external tables.
package storage

import "context"

// Query is one statement: SQL with ? placeholders, their arguments, and
// the external tables it reads.
type Query struct {
	SQL      string
	Args     []any
	External []*External
}

// External is a table sent with a query (ClickHouse "external data"): it
// exists only while the query runs.
type External struct {
	Name    string
	Columns []Column
	Rows    [][]any
}

// Column is a column of an external table.
type Column struct{ Name, Type string }

// Append adds one row; values are in the order of the columns.
func (e *External) Append(values ...any) { e.Rows = append(e.Rows, values) }

// Engine runs queries on one database. Conn is the real one; tests run the
// same queries through other engines too.
type Engine interface {
	// Exec runs a statement that returns no rows.
	Exec(ctx context.Context, q Query) error
	// Select runs q and appends one element per row to dest, a pointer to
	// a slice of structs whose fields are tagged with their column names
	// (`ch:"name"`).
	Select(ctx context.Context, dest any, q Query) error
	// Insert writes rows into table and returns once they are committed;
	// each row holds the values of columns, in order.
	Insert(ctx context.Context, table string, columns []string, rows [][]any) error
	// InsertColumns is Insert given column by column: values[i] is a
	// slice ([]string, []uint64, []time.Time, …) of the values of
	// columns[i], all of one length. Large batches take it: a row of
	// boxed values costs an allocation per value.
	InsertColumns(ctx context.Context, table string, columns []string, values []any) error
}
