// Package chconn opens ClickHouse connections over the native protocol and
// knows which settings the connected server understands, so that the same
// code runs on old (18.16) and current (24.x+) servers.
//
// Addr may list several servers, the replicas of a cluster. Connections
// stick to one server: a new connection is dialled to the server of the
// previous one, and only when that fails to the next in the list, wrapping
// around (clickhouse-go's DialStrategy hook; its own strategies dial every
// new connection from the start of the list, in order, round-robin or at
// random, which would spread one service over servers, or move it back to
// a replica that is still catching up). A service thus runs on one replica
// at a time, so what is local to a server (Set, Join and temporary tables)
// is where it was made, and it moves on only when its server is lost.
package chconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Options name the servers and database.
type Options struct {
	// Addr is host:port of the native protocol, or several separated by
	// commas: the replicas of a cluster, tried in that order.
	Addr     string
	Database string
	User     string
	Password string
	TLS      *tls.Config  // nil for plain TCP
	Log      *slog.Logger // told which server connections go to; nil for none
}

// Addrs is the list of servers in Addr.
func (o Options) Addrs() []string {
	var out []string
	for _, a := range strings.Split(o.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Conn is a connection pool with the server's version.
type Conn struct {
	driver.Conn
	Database string
	Version  driver.ServerVersion
	opts     Options
	sticky   *sticky
}

// Open connects to the first server of o.Addr that answers, creating the
// database on every server that answers when it is missing there; the
// connection's current database is o.Database.
func Open(ctx context.Context, o Options) (*Conn, error) {
	addrs := o.Addrs()
	if len(addrs) == 0 {
		return nil, fmt.Errorf("clickhouse: no address")
	}
	var created int
	var errs []string
	for _, a := range addrs {
		if err := CreateDatabase(ctx, o, a); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		created++
	}
	if created == 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	st := &sticky{addrs: addrs, log: o.Log}
	conn, err := open(ctx, o, o.Database, st.dial)
	if err != nil {
		return nil, err
	}
	v, err := conn.ServerVersion()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s: server version: %w", st.Server(), err)
	}
	return &Conn{Conn: conn, Database: o.Database, Version: *v, opts: o, sticky: st}, nil
}

// CreateDatabase creates o.Database on the server at addr when missing.
func CreateDatabase(ctx context.Context, o Options, addr string) error {
	one := o
	one.Addr = addr
	boot, err := open(ctx, one, "default", nil)
	if err != nil {
		return err
	}
	defer boot.Close()
	if err := boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(o.Database)); err != nil {
		return fmt.Errorf("clickhouse %s: create database %s: %w", addr, o.Database, err)
	}
	return nil
}

// Server is the address of the server the last connection was dialled to.
func (c *Conn) Server() string { return c.sticky.Server() }

// Switches counts the moves from one server to another since Open: a
// caller that keeps state on a server sees it change.
func (c *Conn) Switches() uint64 { return c.sticky.Switches() }

// Addrs is every server of the connection's list.
func (c *Conn) Addrs() []string { return c.opts.Addrs() }

// OpenOn opens the database on the one server at addr (creating it there
// when missing), for work that must run on every replica.
func (c *Conn) OpenOn(ctx context.Context, addr string) (*Conn, error) {
	o := c.opts
	o.Addr, o.Log = addr, nil
	return Open(ctx, o)
}

// dialStrategy picks the server of each new connection.
type dialStrategy = func(ctx context.Context, connID int, opt *clickhouse.Options, dial clickhouse.Dial) (clickhouse.DialResult, error)

func open(ctx context.Context, o Options, database string, dial dialStrategy) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         o.Addrs(),
		Auth:         clickhouse.Auth{Database: database, Username: o.User, Password: o.Password},
		TLS:          o.TLS,
		DialTimeout:  5 * time.Second,
		ReadTimeout:  5 * time.Minute,
		Compression:  &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
		DialStrategy: dial,
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", o.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", o.Addr, err)
	}
	return conn, nil
}

// sticky dials every new connection to the server of the previous one,
// and to the next servers of the list, wrapping around, only when that
// one fails.
type sticky struct {
	addrs []string
	log   *slog.Logger

	mu       sync.Mutex
	current  int
	dialled  bool
	switches uint64
}

func (s *sticky) dial(ctx context.Context, _ int, opt *clickhouse.Options, dial clickhouse.Dial) (clickhouse.DialResult, error) {
	s.mu.Lock()
	from := s.current
	s.mu.Unlock()
	var errs []string
	for i := range s.addrs {
		n := (from + i) % len(s.addrs)
		r, err := dial(ctx, s.addrs[n], opt)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", s.addrs[n], err))
			continue
		}
		s.mu.Lock()
		first, moved := !s.dialled, n != s.current
		s.dialled, s.current = true, n
		if moved {
			s.switches++
		}
		s.mu.Unlock()
		if s.log != nil && (first || moved) {
			if moved {
				s.log.Warn("clickhouse: server lost; using the next one", "addr", s.addrs[n], "lost", s.addrs[from], "err", strings.Join(errs, "; "))
			} else if len(s.addrs) > 1 {
				s.log.Info("clickhouse: using server", "addr", s.addrs[n], "servers", strings.Join(s.addrs, ","))
			}
		}
		return r, nil
	}
	return clickhouse.DialResult{}, fmt.Errorf("no ClickHouse server answers: %s", strings.Join(errs, "; "))
}

// Server is the address the last connection was dialled to.
func (s *sticky) Server() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[s.current]
}

// Switches counts the moves to another server.
func (s *sticky) Switches() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.switches
}

// AtLeast reports whether the server is version major.minor or newer.
func (c *Conn) AtLeast(major, minor uint64) bool {
	v := c.Version.Version
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// InsertContext returns ctx with the settings an insert must run with: on
// servers that know asynchronous inserts (21.11+), they are turned off so an
// insert returns only once its rows are committed.
func (c *Conn) InsertContext(ctx context.Context) context.Context {
	if c.AtLeast(21, 11) {
		return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
			"async_insert": 0,
		}))
	}
	return ctx
}

// Table returns db.table, quoted.
func (c *Conn) Table(name string) string { return quote(c.Database) + "." + quote(name) }

func quote(ident string) string { return "`" + ident + "`" }
