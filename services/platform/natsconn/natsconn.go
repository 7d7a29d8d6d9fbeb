// Package natsconn connects to NATS with reconnection forever and logs the
// connection's life.
package natsconn

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Options name the server and credentials.
type Options struct {
	URL   string      // comma-separated server URLs
	Creds string      // optional credentials file: JWT + NKEY seed, or an NKEY seed alone
	TLS   *tls.Config // optional client TLS
	Name  string      // connection name shown by the server
	// InboxPrefix is the prefix of the client's reply subjects, where the
	// broker's acknowledgements come back. A user of the secure
	// configuration may subscribe only below its own prefix. When empty,
	// the prefix named in the seed file (see InboxPrefixOf) is used, else
	// the client library's _INBOX.
	InboxPrefix string
	// Attempts bounds the tries of the first connection, 500 ms apart (20
	// when zero): a service waits for a broker that starts after it, a
	// command-line tool reports at once.
	Attempts int
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
		if o.InboxPrefix == "" {
			if o.InboxPrefix, err = InboxPrefixOf(o.Creds); err != nil {
				return nil, err
			}
		}
	}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
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
		if attempt+1 >= cmp.Or(o.Attempts, 20) {
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

// InboxPrefixOf is the inbox prefix a seed file names in its comments, as
// natsauth writes it ("# Connect with inbox prefix _INBOX.provider.<p> …"),
// or "" when it names none (services' and the operator's seeds, .creds
// files).
func InboxPrefixOf(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("nats credentials: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "#") {
			continue
		}
		if _, rest, ok := strings.Cut(line, "inbox prefix "); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return strings.TrimRight(f[0], ".,;()"), nil
			}
		}
	}
	return "", nil
}
