// Package schema creates and migrates the ClickHouse schema from embedded
// SQL files. Every statement is idempotent (CREATE ... IF NOT EXISTS), so
// several replicas may run Migrate at once.
package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/assoliment/assoliment/services/platform/chconn"
)

//go:embed *.sql
var files embed.FS

// Statements returns the schema's statements in order, for database db.
func Statements(db string) ([]string, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "--") {
				lines = append(lines, l)
			}
		}
		for _, stmt := range strings.Split(strings.Join(lines, "\n"), ";") {
			if stmt = strings.TrimSpace(stmt); stmt != "" {
				out = append(out, strings.ReplaceAll(stmt, "{db}", "`"+db+"`"))
			}
		}
	}
	return out, nil
}

// Migrate applies every statement to c's database.
func Migrate(ctx context.Context, c *chconn.Conn) error {
	stmts, err := Statements(c.Database)
	if err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	for _, s := range stmts {
		if err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("schema: %w\n%s", err, s)
		}
	}
	return nil
}
