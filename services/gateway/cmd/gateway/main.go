// Command gateway is the HTTP front door for publishers: it takes
// CloudEvents over HTTP with a bearer token, judges each event by the
// contract, and answers once JetStream has stored it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/assoliment/assoliment/services/gateway/config"
	"github.com/assoliment/assoliment/services/gateway/service"
	"github.com/assoliment/assoliment/services/platform/daemon"
)

func main() {
	daemon.Main("gateway", config.Parse, func(ctx context.Context, cfg config.Config) error {
		reload := make(chan os.Signal, 1) // SIGHUP re-reads the tokens file
		signal.Notify(reload, syscall.SIGHUP)
		return service.Run(ctx, cfg, os.Stderr, reload)
	})
}
