package storage

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/assoliment/assoliment/services/platform/chconn"
)

// Conn runs queries on a ClickHouse server over the native protocol,
// sending only the settings the server's version knows.
type Conn struct{ c *chconn.Conn }

// NewConn returns an engine on c.
func NewConn(c *chconn.Conn) *Conn { return &Conn{c: c} }

// Exec runs a statement that returns no rows.
func (e *Conn) Exec(ctx context.Context, q Query) error {
	ctx, err := withExternal(ctx, q.External)
	if err != nil {
		return err
	}
	return e.c.Exec(ctx, q.SQL, q.Args...)
}

// Select runs q and scans every row into dest (see Engine).
func (e *Conn) Select(ctx context.Context, dest any, q Query) error {
	ctx, err := withExternal(ctx, q.External)
	if err != nil {
		return err
	}
	return e.c.Select(ctx, dest, q.SQL, q.Args...)
}

// Insert writes rows with one batch; on servers that know asynchronous
// inserts (21.11+) they are turned off, so it returns once committed.
func (e *Conn) Insert(ctx context.Context, table string, columns []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	return e.batch(ctx, table, columns, func(b driver.Batch) error {
		for _, r := range rows {
			if err := b.Append(r...); err != nil {
				return err
			}
		}
		return nil
	})
}

// InsertColumns writes one batch column by column (see Engine).
func (e *Conn) InsertColumns(ctx context.Context, table string, columns []string, values []any) error {
	if RowCount(values) == 0 {
		return nil
	}
	return e.batch(ctx, table, columns, func(b driver.Batch) error {
		for i, v := range values {
			if err := b.Column(i).Append(v); err != nil {
				return fmt.Errorf("column %s: %w", columns[i], err)
			}
		}
		return nil
	})
}

// batch sends one insert into columns of table, filled by fill.
func (e *Conn) batch(ctx context.Context, table string, columns []string, fill func(driver.Batch) error) error {
	b, err := e.c.PrepareBatch(e.c.InsertContext(ctx), fmt.Sprintf("INSERT INTO %s (%s)", table, strings.Join(columns, ", ")))
	if err != nil {
		return err
	}
	if err := fill(b); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}

// RowCount is the number of rows of columns given as slices (InsertColumns).
func RowCount(values []any) int {
	if len(values) == 0 {
		return 0
	}
	return reflect.ValueOf(values[0]).Len()
}

// Rows turns columns given as slices (InsertColumns) into rows.
func Rows(values []any) [][]any {
	rows := make([][]any, RowCount(values))
	for i := range rows {
		rows[i] = make([]any, len(values))
	}
	for j, column := range values {
		v := reflect.ValueOf(column)
		for i := range rows {
			rows[i][j] = v.Index(i).Interface()
		}
	}
	return rows
}

func withExternal(ctx context.Context, tables []*External) (context.Context, error) {
	if len(tables) == 0 {
		return ctx, nil
	}
	out := make([]*ext.Table, 0, len(tables))
	for _, t := range tables {
		cols := make([]func(*ext.Table) error, 0, len(t.Columns))
		for _, c := range t.Columns {
			cols = append(cols, ext.Column(c.Name, column.Type(c.Type)))
		}
		x, err := ext.NewTable(t.Name, cols...)
		if err != nil {
			return nil, fmt.Errorf("external table %s: %w", t.Name, err)
		}
		for _, r := range t.Rows {
			if err := x.Append(r...); err != nil {
				return nil, fmt.Errorf("external table %s: %w", t.Name, err)
			}
		}
		out = append(out, x)
	}
	return clickhouse.Context(ctx, clickhouse.WithExternalTable(out...)), nil
}
