package cliflags

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v3"

	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/natsconn"
	"github.com/assoliment/assoliment/services/platform/tlsconfig"
)

// NATS are a program's NATS client settings.
type NATS struct {
	URL   string
	Creds string // NKEY seed file or JWT .creds file
	// InboxPrefix is where replies come back; empty for the prefix the
	// seed file names, else the client library's _INBOX.
	InboxPrefix string
	TLS         tlsconfig.Options // CA, client certificate and key
}

// Category groups the NATS flags in help texts.
const Category = "NATS connection"

// NATSFlags are the flags of the NATS settings, written into dst:
//
//	--nats-url       NATS_URL           (default nats://127.0.0.1:4222)
//	--creds          NATS_CREDS         (also --nats-creds, as the services)
//	--inbox-prefix   NATS_INBOX_PREFIX
//	--tls-ca         NATS_TLS_CA        (also --nats-tls-ca)
//	--tls-cert       NATS_TLS_CERT      (also --nats-tls-cert)
//	--tls-key        NATS_TLS_KEY       (also --nats-tls-key)
func NATSFlags(dst *NATS, getenv func(string) string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "nats-url", Category: Category, Value: "nats://127.0.0.1:4222",
			Usage:   "NATS server `URL`s, comma-separated: nats://, tls:// (TLS with the system's authorities unless --tls-ca), or ws:// / wss://",
			Sources: Env(getenv, "NATS_URL"), Validator: Into(&dst.URL, Checked(config.NATSURL)), ValidateDefaults: true},
		&cli.StringFlag{Name: "creds", Aliases: []string{"nats-creds"}, Category: Category, TakesFile: true,
			Usage:   "credentials `FILE`: an NKEY seed file (provider-<p>.nk, council-<m>.nk, operator.nk) or a JWT .creds file",
			Sources: Env(getenv, "NATS_CREDS"), Destination: &dst.Creds},
		&cli.StringFlag{Name: "inbox-prefix", Category: Category,
			Usage:   "`PREFIX` of reply subjects, where acknowledgements come back (default: the prefix the seed file names)",
			Sources: Env(getenv, "NATS_INBOX_PREFIX"), Validator: Into(&dst.InboxPrefix, Checked(InboxPrefix))},
		&cli.StringFlag{Name: "tls-ca", Aliases: []string{"nats-tls-ca"}, Category: Category, TakesFile: true,
			Usage:   "PEM `FILE` of the authorities that sign the server's certificate (turns TLS on; the system's roots when empty)",
			Sources: Env(getenv, "NATS_TLS_CA"), Destination: &dst.TLS.CAFile},
		&cli.StringFlag{Name: "tls-cert", Aliases: []string{"nats-tls-cert"}, Category: Category, TakesFile: true,
			Usage:   "PEM client certificate `FILE`, for servers that verify clients (with --tls-key)",
			Sources: Env(getenv, "NATS_TLS_CERT"), Destination: &dst.TLS.CertFile},
		&cli.StringFlag{Name: "tls-key", Aliases: []string{"nats-tls-key"}, Category: Category, TakesFile: true,
			Usage:   "PEM key `FILE` of --tls-cert",
			Sources: Env(getenv, "NATS_TLS_KEY"), Destination: &dst.TLS.KeyFile},
	}
}

// InboxPrefix checks a reply-subject prefix: subject tokens without
// wildcards or spaces, such as _INBOX.provider.fcc-medi-ambient.
func InboxPrefix(s string) error {
	if s == "" {
		return nil
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n*>") {
			return errors.New("must be a subject prefix such as _INBOX.provider.fcc-medi-ambient: dot-separated tokens without spaces or wildcards")
		}
	}
	return nil
}

// Connect dials NATS as the named client with these settings, trying the
// first connection attempts times (natsconn's default when 0); it
// reconnects on its own afterwards.
func (n NATS) Connect(ctx context.Context, name string, attempts int, log *slog.Logger) (*nats.Conn, error) {
	o := natsconn.Options{URL: n.URL, Creds: n.Creds, InboxPrefix: n.InboxPrefix, Name: name, Attempts: attempts}
	if !n.TLS.IsZero() {
		c, err := tlsconfig.Client(n.TLS)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca/--tls-cert/--tls-key (NATS_TLS_CA/NATS_TLS_CERT/NATS_TLS_KEY): %w", err)
		}
		o.TLS = c
	}
	return natsconn.Connect(ctx, o, log)
}
