// Command ingest consumes CloudEvents from NATS JetStream, validates them,
// stores each identity once in ClickHouse and dead-letters what is invalid.
package main

import (
	"context"
	"os"

	"github.com/assoliment/assoliment/services/ingest/config"
	"github.com/assoliment/assoliment/services/ingest/service"
	"github.com/assoliment/assoliment/services/platform/daemon"
)

func main() {
	daemon.Main("ingest", config.Parse, func(ctx context.Context, cfg config.Config) error {
		return service.Run(ctx, cfg, os.Stderr)
	})
}
