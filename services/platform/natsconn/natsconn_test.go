package natsconn_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
	"github.com/assoliment/assoliment/services/platform/natsconn"
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
