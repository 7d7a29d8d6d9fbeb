// Package chconn opens ClickHouse connections over the native protocol and
// knows which settings the connected server understands, so that the same
// code runs on old (18.16) and current (24.x+) servers.
package chconn

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Options name the server and database.
type Options struct {
	Addr     string // host:port of the native protocol
	Database string
	User     string
	Password string
	TLS      *tls.Config // nil for plain TCP
}

// Conn is a connection pool with the server's version.
type Conn struct {
	driver.Conn
	Database string
	Version  driver.ServerVersion
}

// Open connects to the server, creating the database when missing; the
// connection's current database is o.Database.
func Open(ctx context.Context, o Options) (*Conn, error) {
	boot, err := open(ctx, o, "default")
	if err != nil {
		return nil, err
	}
	err = boot.Exec(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(o.Database))
	boot.Close()
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: create database %s: %w", o.Addr, o.Database, err)
	}
	conn, err := open(ctx, o, o.Database)
	if err != nil {
		return nil, err
	}
	v, err := conn.ServerVersion()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s: server version: %w", o.Addr, err)
	}
	return &Conn{Conn: conn, Database: o.Database, Version: *v}, nil
}

func open(ctx context.Context, o Options, database string) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{o.Addr},
		Auth:        clickhouse.Auth{Database: database, Username: o.User, Password: o.Password},
		TLS:         o.TLS,
		DialTimeout: 5 * time.Second,
		ReadTimeout: 5 * time.Minute,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
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
