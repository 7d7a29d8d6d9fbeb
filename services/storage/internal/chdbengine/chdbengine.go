// Package chdbengine runs the storage package's queries on chDB, a current
// ClickHouse (26.5) linked into the process, so tests can run every
// statement of the platform on it as well as on the 18.16 server. External
// tables are materialised as ordinary Memory tables for the query; ?
// arguments are bound as literals; results come back as JSONEachRow and
// are scanned into the same named structs as on the server.
package chdbengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/assoliment/assoliment/services/storage"
	_ "github.com/assoliment/assoliment/services/storage/internal/chdblib" // before chdb-go: finds the library
	"github.com/chdb-io/chdb-go/chdb"
)

// Session is the process's chDB session: chDB allows one.
type Session struct {
	mu sync.Mutex
	s  *chdb.Session
}

// Open starts the session with its data in dir.
func Open(dir string) (*Session, error) {
	s, err := chdb.NewSession(dir)
	if err != nil {
		return nil, fmt.Errorf("chdb: %w", err)
	}
	return &Session{s: s}, nil
}

// Close ends the session.
func (s *Session) Close() { s.s.Close() }

// Version is the engine's version.
func (s *Session) Version() (string, error) {
	var v []struct {
		V string `ch:"v"`
	}
	err := (&Engine{s: s, db: "default"}).Select(context.Background(), &v, storage.Query{SQL: "SELECT version() AS v"})
	if err != nil || len(v) != 1 {
		return "", err
	}
	return v[0].V, nil
}

// Database creates database db and returns an engine whose queries run in
// it.
func (s *Session) Database(db string) (*Engine, error) {
	e := &Engine{s: s, db: db}
	if _, err := s.query("CREATE DATABASE IF NOT EXISTS `"+db+"`", "TSV"); err != nil {
		return nil, err
	}
	return e, nil
}

func (s *Session) query(sql, format string) ([]byte, error) {
	r, err := s.s.Query(sql, format)
	if err != nil {
		return nil, fmt.Errorf("chdb: %w\n%s", err, sql)
	}
	if r == nil {
		return nil, nil
	}
	defer r.Free()
	return append([]byte(nil), r.Buf()...), nil
}

// Engine runs queries in one database of the session.
type Engine struct {
	s  *Session
	db string
}

var _ storage.Engine = (*Engine)(nil)

// run binds q, materialises its external tables, runs it in the engine's
// database and drops the tables again.
func (e *Engine) run(q storage.Query, format string) ([]byte, error) {
	sql, err := Bind(q.SQL, q.Args)
	if err != nil {
		return nil, err
	}
	e.s.mu.Lock()
	defer e.s.mu.Unlock()
	if _, err := e.s.query("USE `"+e.db+"`", "TSV"); err != nil {
		return nil, err
	}
	for _, t := range q.External {
		cols := make([]string, len(t.Columns))
		names := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cols[i], names[i] = c.Name+" "+c.Type, c.Name
		}
		if _, err := e.s.query(fmt.Sprintf("CREATE TABLE %s (%s) ENGINE = Memory", t.Name, strings.Join(cols, ", ")), "TSV"); err != nil {
			return nil, err
		}
		defer e.s.query("DROP TABLE IF EXISTS "+t.Name, "TSV")
		if len(t.Rows) > 0 {
			values, err := Values(t.Rows)
			if err != nil {
				return nil, err
			}
			if _, err := e.s.query(fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", t.Name, strings.Join(names, ", "), values), "TSV"); err != nil {
				return nil, err
			}
		}
	}
	return e.s.query(sql, format)
}

// Exec runs a statement.
func (e *Engine) Exec(_ context.Context, q storage.Query) error {
	_, err := e.run(q, "TSV")
	return err
}

// Insert writes rows with one INSERT … VALUES.
func (e *Engine) Insert(_ context.Context, table string, columns []string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	values, err := Values(rows)
	if err != nil {
		return err
	}
	return e.Exec(context.Background(), storage.Query{SQL: fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", table, strings.Join(columns, ", "), values)})
}

// InsertColumns is Insert given column by column.
func (e *Engine) InsertColumns(ctx context.Context, table string, columns []string, values []any) error {
	return e.Insert(ctx, table, columns, storage.Rows(values))
}

// TSV runs q and returns its rows as tab-separated text.
func (e *Engine) TSV(q storage.Query) (string, error) {
	b, err := e.run(q, "TSV")
	return string(b), err
}

// Select runs q and scans each row into a new element of *dest, a slice of
// structs with `ch` tags (embedded structs included), by column name.
func (e *Engine) Select(_ context.Context, dest any, q storage.Query) error {
	out := reflect.ValueOf(dest)
	if out.Kind() != reflect.Pointer || out.Elem().Kind() != reflect.Slice || out.Elem().Type().Elem().Kind() != reflect.Struct {
		return fmt.Errorf("chdb: Select needs a pointer to a slice of structs, not %T", dest)
	}
	b, err := e.run(q, "JSONEachRow")
	if err != nil {
		return err
	}
	elem := out.Elem().Type().Elem()
	fields := map[string][]int{}
	for _, f := range reflect.VisibleFields(elem) {
		if tag := f.Tag.Get("ch"); tag != "" && !f.Anonymous {
			fields[tag] = f.Index
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	for {
		var row map[string]any
		if err := dec.Decode(&row); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("chdb: decode row: %w", err)
		}
		v := reflect.New(elem).Elem()
		for col, x := range row {
			idx, ok := fields[col]
			if !ok {
				return fmt.Errorf("chdb: column %s has no field in %s", col, elem)
			}
			if err := assign(v.FieldByIndex(idx), x); err != nil {
				return fmt.Errorf("chdb: column %s: %w", col, err)
			}
		}
		out.Elem().Set(reflect.Append(out.Elem(), v))
	}
}

// assign stores a JSON value of a ClickHouse column in f.
func assign(f reflect.Value, x any) error {
	if f.Type() == reflect.TypeOf(time.Time{}) {
		s, ok := x.(string)
		if !ok {
			return fmt.Errorf("%v is not a DateTime", x)
		}
		t, err := time.ParseInLocation(time.DateTime, s, time.UTC)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(t))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			return fmt.Errorf("%v is not a string", x)
		}
		f.SetString(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(number(x), 10, 64)
		if err != nil || f.OverflowInt(n) {
			return fmt.Errorf("%v does not fit %s", x, f.Type())
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(number(x), 10, 64)
		if err != nil || f.OverflowUint(n) {
			return fmt.Errorf("%v does not fit %s", x, f.Type())
		}
		f.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(number(x), 64)
		if err != nil {
			return fmt.Errorf("%v is not a number", x)
		}
		f.SetFloat(n)
	case reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			return fmt.Errorf("%v is not a Bool", x)
		}
		f.SetBool(b)
	case reflect.Slice:
		list, ok := x.([]any)
		if !ok {
			return fmt.Errorf("%v is not an array", x)
		}
		s := reflect.MakeSlice(f.Type(), len(list), len(list))
		for i, y := range list {
			if err := assign(s.Index(i), y); err != nil {
				return err
			}
		}
		f.Set(s)
	default:
		return fmt.Errorf("no conversion to %s", f.Type())
	}
	return nil
}

// number is a JSON number, or a number ClickHouse quoted (64-bit integers,
// nan, inf), as text.
func number(x any) string {
	switch v := x.(type) {
	case json.Number:
		return v.String()
	case string:
		return v
	}
	return fmt.Sprint(x)
}

// Bind replaces every ? outside string literals with the literal of the
// next argument, as the native driver binds them client-side.
func Bind(sql string, args []any) (string, error) {
	var b strings.Builder
	n, quoted := 0, false
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case quoted && c == '\\' && i+1 < len(sql):
			b.WriteByte(c)
			i++
			c = sql[i]
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			if n >= len(args) {
				return "", fmt.Errorf("chdb: more placeholders than the %d arguments\n%s", len(args), sql)
			}
			lit, err := Literal(args[n])
			if err != nil {
				return "", err
			}
			b.WriteString(lit)
			n++
			continue
		}
		b.WriteByte(c)
	}
	if n != len(args) {
		return "", fmt.Errorf("chdb: %d arguments for %d placeholders\n%s", len(args), n, sql)
	}
	return b.String(), nil
}

// Values renders rows as the VALUES of an INSERT.
func Values(rows [][]any) (string, error) {
	var b strings.Builder
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, v := range r {
			if j > 0 {
				b.WriteString(", ")
			}
			lit, err := Literal(v)
			if err != nil {
				return "", err
			}
			b.WriteString(lit)
		}
		b.WriteByte(')')
	}
	return b.String(), nil
}

// Literal is v written as a ClickHouse literal.
func Literal(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return quote(x), nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case uint8:
		return strconv.FormatUint(uint64(x), 10), nil
	case uint16:
		return strconv.FormatUint(uint64(x), 10), nil
	case uint32:
		return strconv.FormatUint(uint64(x), 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan", nil
		case math.IsInf(x, 1):
			return "inf", nil
		case math.IsInf(x, -1):
			return "-inf", nil
		}
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case time.Time:
		return "'" + x.UTC().Format(time.DateTime) + "'", nil
	}
	return "", fmt.Errorf("chdb: no literal for %T", v)
}

// quote is s as a string literal: quotes and backslashes escaped, and
// every byte outside printable ASCII written as \xHH, so that any bytes,
// not only valid UTF-8, come back as they were.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
