package natsauth_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// client is one user's connection, with the errors the server reports to it.
type client struct {
	name string
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func connect(t *testing.T, s *natsauthtest.Secure, name string) *client {
	t.Helper()
	c := &client{name: name, errs: make(chan error, 64)}
	c.nc = s.ConnectAs(t, name, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case c.errs <- err:
		default:
		}
	}))
	js, err := jetstream.New(c.nc)
	if err != nil {
		t.Fatal(err)
	}
	c.js = js
	return c
}

// violation waits for the server's permission violation naming subject.
func (c *client) violation(t *testing.T, what, subject string) {
	t.Helper()
	timeout := time.After(3 * time.Second)
	for {
		select {
		case err := <-c.errs:
			msg := strings.ToLower(err.Error())
			if strings.Contains(msg, "permissions violation for "+what) && strings.Contains(err.Error(), `"`+subject+`"`) {
				return
			}
		case <-timeout:
			t.Fatalf("%s: no permissions violation for %s %q", c.name, what, subject)
		}
	}
}

// refused publishes on subject and expects the server to refuse it.
func (c *client) refused(t *testing.T, subject string) {
	t.Helper()
	if err := c.nc.Publish(subject, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c.violation(t, "publish to", subject)
}

// acked publishes on subject through JetStream and expects the broker's ack
// from stream, which comes back on the user's own inbox.
func (c *client) acked(t *testing.T, subject, stream string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := c.js.Publish(ctx, subject, []byte(`{}`))
	if err != nil {
		t.Fatalf("%s: publish %s: %v", c.name, subject, err)
	}
	if ack.Stream != stream || ack.Sequence == 0 {
		t.Fatalf("%s: ack %+v", c.name, ack)
	}
}

func (c *client) subscribeRefused(t *testing.T, subject string) {
	t.Helper()
	if _, err := c.nc.SubscribeSync(subject); err != nil {
		t.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c.violation(t, "subscription to", subject)
}

func msgs(t *testing.T, c *client, stream string) uint64 {
	t.Helper()
	s, err := c.js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestPermissions runs the shipped secure configuration and checks what each
// kind of user can and cannot do: the permission matrix of docs/security.md.
func TestPermissions(t *testing.T) {
	s := natsauthtest.Start(t, false)
	ctx := context.Background()

	ingest := connect(t, s, "ingest")
	for name, subjects := range map[string][]string{
		"SMARTCITY": {"smartcity.>"}, "SMARTCITY_DLQ": {"deadletter.>"}, "SMARTCITY_IMPORT": {"import.smartcity.>"},
	} {
		if _, err := ingest.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: subjects}); err != nil {
			t.Fatalf("the ingest user must manage stream %s: %v", name, err)
		}
	}

	fcc := connect(t, s, "provider-fcc-medi-ambient")
	sabadell := connect(t, s, "council-sabadell")
	evaluator := connect(t, s, "evaluator")
	gateway := connect(t, s, "gateway")

	t.Run("provider", func(t *testing.T) {
		// Its own measurements and incidents, in the municipalities it
		// serves, acknowledged.
		fcc.acked(t, "smartcity.sabadell.fcc-medi-ambient.measurement", "SMARTCITY")
		fcc.acked(t, "smartcity.terrassa.fcc-medi-ambient.incident", "SMARTCITY")
		for _, subj := range []string{
			"smartcity.granollers.fcc-medi-ambient.measurement", // a municipality it does not serve
			"smartcity.invented-town.fcc-medi-ambient.measurement",
			"smartcity.*.fcc-medi-ambient.measurement",
			"smartcity.sabadell.aigues-de-sabadell.measurement", // as another provider
			"smartcity.sabadell.aigues-de-sabadell.incident",
			"smartcity.sabadell.council.catalog", // the municipality's catalogue
			"smartcity.sabadell.council.measurement",
			"smartcity.sabadell.fcc-medi-ambient.catalog", // a catalogue of its own
			"smartcity.sabadell.*.measurement",            // wildcards as literal tokens
			"smartcity.>",
			"import.smartcity.sabadell.council.catalog", // the import stream, sourced into the main one
			"deadletter.too_large",
			"assessment.sabadell",
			"$JS.API.STREAM.INFO.SMARTCITY", // no JetStream API at all
			"$JS.API.STREAM.PURGE.SMARTCITY",
			"$JS.API.STREAM.DELETE.SMARTCITY",
			"$JS.API.CONSUMER.CREATE.SMARTCITY.spy",
			"$JS.API.DIRECT.GET.SMARTCITY",
			"$JS.API.STREAM.INFO.SMARTCITY_DLQ_provider-fcc-medi-ambient", // its dead letters only under the prefix
			"$JS.SMARTCITY.API.DIRECT.GET.SMARTCITY_DLQ",                  // not the platform's dead-letter stream
			"$JS.SMARTCITY.API.DIRECT.GET.SMARTCITY_DLQ_provider-aigues-de-sabadell",
			"$JS.SMARTCITY.API.CONSUMER.CREATE.SMARTCITY_DLQ_provider-fcc-medi-ambient",
			"$JS.ACK.SMARTCITY.ingest.1.1.1.1.1.0",
		} {
			fcc.refused(t, subj)
		}
		// Reading anything but its own inbox is refused.
		for _, subj := range []string{"smartcity.>", ">", "_INBOX.>", "_INBOX.provider.aigues-de-sabadell.>", "deadletter.>"} {
			fcc.subscribeRefused(t, subj)
		}
	})

	t.Run("council", func(t *testing.T) {
		sabadell.acked(t, "smartcity.sabadell.council.catalog", "SMARTCITY")
		sabadell.acked(t, "smartcity.sabadell.council.measurement", "SMARTCITY")
		for _, subj := range []string{
			"smartcity.terrassa.council.catalog", // another municipality's catalogue
			"smartcity.sabadell.fcc-medi-ambient.measurement",
			"import.smartcity.terrassa.council.catalog",
			"$JS.API.STREAM.PURGE.SMARTCITY",
		} {
			sabadell.refused(t, subj)
		}
		sabadell.subscribeRefused(t, "_INBOX.council.terrassa.>")
	})

	t.Run("ingest", func(t *testing.T) {
		ingest.acked(t, "deadletter.sabadell.fcc-medi-ambient.malformed_json", "SMARTCITY_DLQ")
		for _, subj := range []string{
			"smartcity.sabadell.council.catalog", "smartcity.sabadell.fcc-medi-ambient.measurement",
			"import.smartcity.sabadell.council.catalog", "assessment.sabadell",
			"$JS.API.STREAM.DELETE.SMARTCITY", "$JS.API.STREAM.PURGE.SMARTCITY", "$JS.API.STREAM.MSG.DELETE.SMARTCITY",
			"$JS.API.CONSUMER.DELETE.SMARTCITY.ingest", "$JS.API.STREAM.CREATE.OTHER",
		} {
			ingest.refused(t, subj)
		}
		if _, err := ingest.js.Stream(ctx, "SMARTCITY"); err != nil {
			t.Fatalf("ingest reads its stream's info: %v", err)
		}
		// Each service reads only its own inbox.
		for _, subj := range []string{"_INBOX.>", "_INBOX.gateway.>", "_INBOX.provider.fcc-medi-ambient.>", ">"} {
			ingest.subscribeRefused(t, subj)
		}
	})

	t.Run("gateway", func(t *testing.T) {
		gateway.acked(t, "smartcity.granollers.endesa-enllumenat.measurement", "SMARTCITY")
		if _, err := gateway.js.Stream(ctx, "SMARTCITY"); err != nil {
			t.Fatalf("the gateway reads the main stream's info: %v", err)
		}
		for _, subj := range []string{
			"deadletter.sabadell.fcc-medi-ambient.too_large", "assessment.sabadell", "import.smartcity.sabadell.council.catalog",
			"$JS.API.STREAM.PURGE.SMARTCITY", "$JS.API.STREAM.UPDATE.SMARTCITY", "$JS.API.CONSUMER.CREATE.SMARTCITY.spy",
			"$JS.API.DIRECT.GET.SMARTCITY", "$JS.API.STREAM.INFO.SMARTCITY_DLQ",
		} {
			gateway.refused(t, subj)
		}
		for _, subj := range []string{"_INBOX.>", "_INBOX.ingest.>", "smartcity.>"} {
			gateway.subscribeRefused(t, subj)
		}
	})

	t.Run("evaluator", func(t *testing.T) {
		if _, err := evaluator.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "SMARTCITY_ASSESSMENTS", Subjects: []string{"assessment.>"}}); err != nil {
			t.Fatalf("the evaluator must manage its stream: %v", err)
		}
		evaluator.acked(t, "assessment.sabadell", "SMARTCITY_ASSESSMENTS")
		for _, subj := range []string{
			"smartcity.sabadell.council.catalog", "deadletter.too_large", "import.smartcity.sabadell.council.catalog",
			"$JS.API.STREAM.PURGE.SMARTCITY", "$JS.API.STREAM.INFO.SMARTCITY",
		} {
			evaluator.refused(t, subj)
		}
		evaluator.subscribeRefused(t, "_INBOX.ingest.>")
	})

	t.Run("outsider", func(t *testing.T) {
		// No credentials.
		if nc, err := nats.Connect(s.ClientURL(), nats.RootCAs(s.Certs.CA), nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Fatal("a client without credentials must be refused")
		} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Fatalf("want an authorization error, got %v", err)
		}
		// A key the server does not know.
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		strangerSeed, _ := kp.Seed()
		strangerFile := filepath.Join(t.TempDir(), "stranger.nk")
		if err := os.WriteFile(strangerFile, strangerSeed, 0o600); err != nil {
			t.Fatal(err)
		}
		stranger, err := nats.NkeyOptionFromSeed(strangerFile)
		if err != nil {
			t.Fatal(err)
		}
		if nc, err := nats.Connect(s.ClientURL(), stranger, nats.RootCAs(s.Certs.CA), nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Fatal("an unknown key must be refused")
		}
		// Plain TCP: the server announces that TLS is required and never
		// answers a client that does not start it.
		conn, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		info, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil || !strings.Contains(info, `"tls_required":true`) {
			t.Fatalf("INFO %q, %v: TLS must be required", info, err)
		}
		if _, err := conn.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\n")); err == nil {
			rest, _ := io.ReadAll(conn)
			if strings.Contains(string(rest), "PONG") {
				t.Fatalf("the server answered a plain connection: %q", rest)
			}
		}
		seed, err := nats.NkeyOptionFromSeed(s.Seed(t, "operator"))
		if err != nil {
			t.Fatal(err)
		}
		// A server certificate from an unknown authority is refused by the client.
		otherCA := testenv.Certs(t, t.TempDir()).CA
		if nc, err := nats.Connect(s.ClientURL(), seed, nats.RootCAs(otherCA), nats.MaxReconnects(0)); err == nil {
			nc.Close()
			t.Fatal("a server certificate from another authority must be refused")
		}
	})

	// Only the acknowledged publishes reached the streams.
	if n := msgs(t, ingest, "SMARTCITY"); n != 5 {
		t.Fatalf("SMARTCITY holds %d messages, want the 5 allowed ones", n)
	}
	if n := msgs(t, ingest, "SMARTCITY_DLQ"); n != 1 {
		t.Fatalf("SMARTCITY_DLQ holds %d messages, want 1", n)
	}
	if n := msgs(t, ingest, "SMARTCITY_IMPORT"); n != 0 {
		t.Fatalf("SMARTCITY_IMPORT holds %d messages, want 0", n)
	}
}

// With verify: true a client needs a certificate as well as its key.
func TestClientCertificateRequired(t *testing.T) {
	s := natsauthtest.Start(t, true)
	c := connect(t, s, "provider-fcc-medi-ambient")
	ingest := connect(t, s, "ingest")
	if _, err := ingest.js.CreateOrUpdateStream(context.Background(), jetstream.StreamConfig{Name: "SMARTCITY", Subjects: []string{"smartcity.>"}}); err != nil {
		t.Fatal(err)
	}
	c.acked(t, "smartcity.sabadell.fcc-medi-ambient.measurement", "SMARTCITY")
	seed, err := nats.NkeyOptionFromSeed(s.Seed(t, "provider-fcc-medi-ambient"))
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(s.ClientURL(), seed, nats.RootCAs(s.Certs.CA), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a client without a certificate must be refused when the server verifies clients")
	}
}
