package service_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/assoliment/assoliment/services/gateway/config"
	"github.com/assoliment/assoliment/services/gateway/service"
	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// The gateway works as the gateway user of the shipped secure NATS
// configuration, over TLS with a client certificate: with its seed file
// alone (the inbox prefix is read from it) it publishes on any publisher's
// subject and gets JetStream's acknowledgements.
func TestSecureNATS(t *testing.T) {
	s := natsauthtest.Start(t, true)
	createStreams(t, mustJS(t, s.ConnectAs(t, "ingest"))) // as in a deployment
	// The operator reads the stream back.
	e := &env{js: mustJS(t, s.ConnectAs(t, "operator")), tokens: map[string]string{}, reload: make(chan os.Signal, 1)}
	e.file = t.TempDir() + "/tokens.yaml"
	e.writeTokens(t, map[string][]string{"endesa-enllumenat": {"granollers"}})
	addr := testenv.FreeAddr(t)
	cfg, err := config.Parse([]string{
		"--nats-url", s.ClientURL(), "--nats-creds", s.Seed(t, "gateway"),
		"--nats-tls-ca", s.Certs.CA, "--nats-tls-cert", s.Certs.ClientCert, "--nats-tls-key", s.Certs.ClientKey,
		"--http-addr", addr, "--tokens-file", e.file, "--log-level", "warn",
	}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service.Run(ctx, cfg, testLog{t}, e.reload) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	testenv.Eventually(t, "the gateway to be ready", 20*time.Second, func() bool {
		return e.get(t, "/readyz") == 200
	})
	body := measurement(t, "sec-1", "granollers", "endesa-enllumenat")
	if a := e.post(t, e.tokens["endesa-enllumenat"], structured, body); a.code != 202 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	m := e.stored(t, "smartcity.granollers.endesa-enllumenat.measurement")
	if !bytes.Equal(m.Data, body) || m.Header.Get(nats.MsgIdHdr) != "sec-1" {
		t.Fatalf("stored %s %v", m.Data, m.Header)
	}
}
