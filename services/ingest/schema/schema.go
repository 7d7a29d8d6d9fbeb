// Package schema applies the schema migrations of the storage package, the
// one owner of the tables; ingest/service calls it at start.
package schema

import (
	"context"

	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/storage"
)

// Migrate applies the migrations not yet applied to c's database.
func Migrate(ctx context.Context, c *chconn.Conn) error {
	return storage.Migrate(ctx, storage.NewConn(c))
}
