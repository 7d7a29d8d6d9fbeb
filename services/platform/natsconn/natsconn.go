// Package natsconn connects to NATS with reconnection forever and logs the
// connection's life.
package natsconn

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
)

// Options name the server and credentials.
type Options struct {
	URL   string      // comma-separated server URLs
	Creds string      // optional credentials file: JWT + NKEY seed, or an NKEY seed alone
	TLS   *tls.Config // optional client TLS
	Name  string      // connection name shown by the server
}

// Connect dials NATS. After the first connection it reconnects on its own,
// for ever, and keeps publishing into its buffer meanwhile.
func Connect(ctx context.Context, o Options, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectBufSize(64 << 20),
		nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			log.Error("nats error", "subject", subj, "err", err)
		}),
	}
	if o.Creds != "" {
		auth, err := credentials(o.Creds)
		if err != nil {
			return nil, err
		}
		opts = append(opts, auth)
	}
	if o.TLS != nil {
		opts = append(opts, nats.Secure(o.TLS))
	}
	var nc *nats.Conn
	var err error
	for attempt := 0; ; attempt++ {
		nc, err = nats.Connect(o.URL, opts...)
		if err == nil {
			return nc, nil
		}
		if attempt >= 20 {
			return nil, fmt.Errorf("nats %s: %w", o.URL, err)
		}
		log.Warn("nats not reachable yet", "url", o.URL, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("nats %s: %w", o.URL, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// credentials reads a credentials file: a decentralised-auth creds file
// (user JWT and seed) or the seed of an NKEY user declared in the server's
// configuration (deploy/nats/secure).
func credentials(file string) (nats.Option, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
		return nats.UserCredentials(file), nil
	}
	opt, err := nats.NkeyOptionFromSeed(file)
	if err != nil {
		return nil, fmt.Errorf("nats credentials %s: neither a creds file nor an NKEY seed: %w", file, err)
	}
	return opt, nil
}
