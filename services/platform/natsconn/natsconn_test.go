package natsconn_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
	"github.com/assoliment/assoliment/services/platform/natsconn"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/platform/tlsconfig"
)

// An NKEY seed file works as credentials, over TLS with a client
// certificate; a file that holds no credentials is refused before dialling.
func TestConnectWithNKeySeedOverTLS(t *testing.T) {
	s := natsauthtest.Start(t, true)
	tc, err := tlsconfig.Client(tlsconfig.Options{CAFile: s.Certs.CA, CertFile: s.Certs.ClientCert, KeyFile: s.Certs.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, err := natsconn.Connect(context.Background(), natsconn.Options{URL: s.ClientURL(), Creds: s.Seed(t, "ingest"), TLS: tc, Name: "test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !nc.IsConnected() || nc.ConnectedUrl() == "" {
		t.Fatal("not connected")
	}
	if _, err := nc.TLSConnectionState(); err != nil {
		t.Fatalf("connection is not TLS: %v", err)
	}

	junk := filepath.Join(t.TempDir(), "junk")
	if err := os.WriteFile(junk, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := natsconn.Connect(context.Background(), natsconn.Options{URL: s.ClientURL(), Creds: junk, TLS: tc}, log); err == nil ||
		!strings.Contains(err.Error(), "credentials") {
		t.Fatalf("want a credentials error, got %v", err)
	}
}

// A provider's seed file names its inbox prefix: Connect uses it, so the
// broker's acknowledgement reaches the provider, which may subscribe only
// below that prefix. With the library's default prefix it would not.
func TestInboxPrefixFromSeedFile(t *testing.T) {
	s := natsauthtest.Start(t, false)
	ctx := context.Background()
	tc, err := tlsconfig.Client(tlsconfig.Options{CAFile: s.Certs.CA})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	op := s.ConnectAs(t, "operator")
	opjs, err := jetstream.New(op)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opjs.CreateStream(ctx, jetstream.StreamConfig{Name: "SMARTCITY", Subjects: []string{"smartcity.>"}}); err != nil {
		t.Fatal(err)
	}

	seed := s.Seed(t, "provider-fcc-medi-ambient")
	want := s.Users["provider-fcc-medi-ambient"].InboxPrefix
	if got, err := natsconn.InboxPrefixOf(seed); err != nil || got != want {
		t.Fatalf("InboxPrefixOf = %q, %v; want %q", got, err, want)
	}
	if got, err := natsconn.InboxPrefixOf(s.Seed(t, "operator")); err != nil || got != "" {
		t.Fatalf("operator seed: InboxPrefixOf = %q, %v; want none", got, err)
	}
	nc, err := natsconn.Connect(ctx, natsconn.Options{URL: s.ClientURL(), Creds: seed, TLS: tc, Name: "test"}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if inbox := nc.NewInbox(); !strings.HasPrefix(inbox, want+".") {
		t.Fatalf("inbox %s is not below %s", inbox, want)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.Publish(pctx, "smartcity.sabadell.fcc-medi-ambient.measurement", []byte("{}")); err != nil {
		t.Fatalf("publish as the provider: %v", err)
	}
}

// A command-line tool asks for one attempt: an unreachable server is
// reported without the retries a service makes.
func TestOneAttempt(t *testing.T) {
	var logged strings.Builder
	log := slog.New(slog.NewTextHandler(&logged, nil))
	_, err := natsconn.Connect(context.Background(), natsconn.Options{URL: "nats://" + testenv.FreeAddr(t), Attempts: 1}, log)
	if err == nil {
		t.Fatal("connected to nothing")
	}
	if logged.Len() != 0 {
		t.Fatalf("retried:\n%s", logged.String())
	}
}
