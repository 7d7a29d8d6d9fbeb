// Command natsauth generates the accounts and users of the secure NATS
// server configuration (deploy/nats/secure): the accounts file the server
// includes (public keys, password hashes, permissions, exports, imports,
// limits) and each user's secrets (an NKEY seed; an MQTT password for
// providers and councils). Secrets already present are kept, so it can run
// again after adding a municipality or a provider.
//
//	go run ./cmd/natsauth --spec ../../deploy/nats/secure/publishers.yaml \
//	    --conf ../../deploy/nats/secure/accounts.conf --seeds /secure/place/seeds
//
// With --nats-url it then connects as the operator and creates or updates
// each publisher's copy of its dead letters (docs/security.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/natsauth"
	"github.com/assoliment/assoliment/services/platform/natsconn"
	"github.com/assoliment/assoliment/services/platform/tlsconfig"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "natsauth:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	var specFile, conf, seeds, url, creds string
	var tls tlsconfig.Settings
	s := config.New("natsauth", getenv)
	s.String(&specFile, "spec", "NATSAUTH_SPEC", "publishers.yaml", "YAML file listing municipalities, providers with the municipalities each serves, and limits", nil)
	s.String(&conf, "conf", "NATSAUTH_CONF", "accounts.conf", "accounts file to write (included by nats-server.conf)", nil)
	s.String(&seeds, "seeds", "NATSAUTH_SEEDS", "seeds", "folder of the users' secrets: NKEY seeds and MQTT passwords (kept when present)", nil)
	s.String(&url, "nats-url", "NATS_URL", "", "when set, also create or update the publishers' dead-letter streams on this server, as --nats-creds", optional(config.NATSURL))
	s.String(&creds, "nats-creds", "NATS_CREDS", "", "the operator's seed file, with --nats-url", nil)
	tlsconfig.RegisterNATS(s, &tls)
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(out, s.Usage())
		}
		return err
	}
	spec, err := natsauth.LoadSpec(specFile)
	if err != nil {
		return err
	}
	plan, err := natsauth.Generate(spec, conf, seeds)
	if err != nil {
		return err
	}
	for _, u := range plan.Users {
		fmt.Fprintf(out, "%-40s %-28s %s  %s\n", u.Name, u.Account, u.PublicKey, natsauth.SeedFile(seeds, u.Name))
	}
	for _, p := range plan.Publishers {
		fmt.Fprintf(out, "%-40s mqtt user %s, password in %s\n", p.Account, p.Account, natsauth.MQTTPasswordFile(seeds, p.Account))
	}
	fmt.Fprintf(out, "wrote %s; reload the server, and give each user only its own files\n", conf)
	if url == "" {
		return nil
	}
	tc, err := tls.NATS()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	nc, err := natsconn.Connect(ctx, natsconn.Options{URL: url, Creds: creds, TLS: tc, Name: "natsauth", Attempts: 1}, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	names, err := natsauth.EnsureDeadLetterStreams(ctx, js, plan)
	for _, n := range names {
		fmt.Fprintf(out, "dead-letter stream %s ready\n", n)
	}
	return err
}

// optional applies check only to a value that is set.
func optional(check func(string) error) func(string) error {
	return func(v string) error {
		if v == "" {
			return nil
		}
		return check(v)
	}
}
