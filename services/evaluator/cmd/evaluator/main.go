// Command evaluator places every municipality on the five maturity levels,
// serves the JSON API and the Prometheus metrics, and announces level
// changes.
package main

import (
	"context"
	"os"

	"github.com/assoliment/assoliment/services/evaluator/config"
	"github.com/assoliment/assoliment/services/evaluator/service"
	"github.com/assoliment/assoliment/services/platform/daemon"
)

func main() {
	daemon.Main("evaluator", config.Parse, func(ctx context.Context, cfg config.Config) error {
		return service.Run(ctx, cfg, os.Stderr)
	})
}
