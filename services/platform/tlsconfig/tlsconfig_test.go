package tlsconfig_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/platform/tlsconfig"
)

// serve accepts TLS connections with the server certificate of f, asking
// for a client certificate signed by f.CA when mutual is set, and completes
// each handshake.
func serve(t *testing.T, f testenv.CertFiles, mutual bool) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if mutual {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AppendCertsFromPEM(pem)
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// handshake dials addr with cfg and reports the handshake's error. With
// TLS 1.3 a refused client certificate shows on the first read.
func handshake(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Read(make([]byte, 1))
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func TestClientVerifiesServer(t *testing.T) {
	f := testenv.Certs(t, t.TempDir())
	other := testenv.Certs(t, t.TempDir())
	addr := serve(t, f, false)

	cfg, err := tlsconfig.Client(tlsconfig.Options{CAFile: f.CA})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InsecureSkipVerify || cfg.MinVersion < tls.VersionTLS12 || cfg.RootCAs == nil {
		t.Fatalf("unsafe configuration: %+v", cfg)
	}
	if err := handshake(addr, cfg); err != nil {
		t.Fatalf("handshake with the right CA: %v", err)
	}

	wrong, err := tlsconfig.Client(tlsconfig.Options{CAFile: other.CA})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(addr, wrong); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a server certificate from another CA must be refused, got %v", err)
	}

	named, err := tlsconfig.Client(tlsconfig.Options{CAFile: f.CA, ServerName: "nats.example.cat"})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(addr, named); err == nil {
		t.Fatal("a certificate for another name must be refused")
	}
}

func TestClientCertificate(t *testing.T) {
	f := testenv.Certs(t, t.TempDir())
	addr := serve(t, f, true)

	with, err := tlsconfig.Client(tlsconfig.Options{CAFile: f.CA, CertFile: f.ClientCert, KeyFile: f.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	if len(with.Certificates) != 1 {
		t.Fatalf("client certificate not loaded: %d", len(with.Certificates))
	}
	if err := handshake(addr, with); err != nil {
		t.Fatalf("handshake with a client certificate: %v", err)
	}
	without, err := tlsconfig.Client(tlsconfig.Options{CAFile: f.CA})
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(addr, without); err == nil {
		t.Fatal("a server asking for a client certificate must refuse a client without one")
	}
}

func TestClientErrors(t *testing.T) {
	dir := t.TempDir()
	f := testenv.Certs(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]tlsconfig.Options{
		"missing CA":       {CAFile: filepath.Join(dir, "nope.pem")},
		"CA not PEM":       {CAFile: notPEM},
		"cert without key": {CertFile: f.ClientCert},
		"key without cert": {KeyFile: f.ClientKey},
		"key mismatch":     {CertFile: f.ClientCert, KeyFile: f.ServerKey},
	} {
		if _, err := tlsconfig.Client(o); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if !(tlsconfig.Options{}).IsZero() || (tlsconfig.Options{CAFile: "x"}).IsZero() {
		t.Fatal("IsZero")
	}
	cfg, err := tlsconfig.Client(tlsconfig.Options{})
	if err != nil || cfg.RootCAs != nil || cfg.InsecureSkipVerify {
		t.Fatalf("system roots expected: %v %+v", err, cfg)
	}
}

func TestSettings(t *testing.T) {
	f := testenv.Certs(t, t.TempDir())
	parse := func(args []string, env map[string]string) tlsconfig.Settings {
		t.Helper()
		var st tlsconfig.Settings
		s := config.New("svc", func(k string) string { return env[k] })
		tlsconfig.Register(s, &st)
		if err := s.Parse(args); err != nil {
			t.Fatal(err)
		}
		return st
	}
	// Nothing set: no TLS configuration at all.
	st := parse(nil, nil)
	if n, err := st.NATS(); n != nil || err != nil {
		t.Fatalf("nats: %v %v", n, err)
	}
	if c, err := st.ClickHouseConfig(); c != nil || err != nil {
		t.Fatalf("clickhouse: %v %v", c, err)
	}
	// Flags and environment variables.
	st = parse([]string{"--nats-tls-ca", f.CA, "--nats-tls-cert", f.ClientCert, "--clickhouse-tls=true"},
		map[string]string{"NATS_TLS_KEY": f.ClientKey, "CLICKHOUSE_TLS_CA": f.CA})
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	n, err := st.NATS()
	if err != nil || n.RootCAs == nil || len(n.Certificates) != 1 || n.InsecureSkipVerify {
		t.Fatalf("nats: %+v %v", n, err)
	}
	c, err := st.ClickHouseConfig()
	if err != nil || c.RootCAs == nil || c.InsecureSkipVerify {
		t.Fatalf("clickhouse: %+v %v", c, err)
	}
	// ClickHouse TLS with the system's roots.
	if c, err := parse([]string{"--clickhouse-tls=true"}, nil).ClickHouseConfig(); err != nil || c == nil || c.RootCAs != nil {
		t.Fatalf("clickhouse with system roots: %+v %v", c, err)
	}
	// Every problem at once.
	err = parse([]string{"--nats-tls-cert", f.ClientCert}, map[string]string{"CLICKHOUSE_TLS_CA": f.CA}).Check()
	if err == nil || !strings.Contains(err.Error(), "set both or neither") || !strings.Contains(err.Error(), "CLICKHOUSE_TLS is false") {
		t.Fatalf("want both problems, got %v", err)
	}
}
