package connect

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

func parse(args []string, env map[string]string) (Settings, error) {
	var c Settings
	s := config.New("svc", func(k string) string { return env[k] })
	Register(s, &c)
	if err := s.Parse(args); err != nil {
		return c, err
	}
	return c, c.Check()
}

func TestTLSSettings(t *testing.T) {
	f := testenv.Certs(t, t.TempDir())
	c, err := parse(nil, map[string]string{"NATS_TLS_CA": f.CA, "NATS_TLS_CERT": f.ClientCert, "NATS_TLS_KEY": f.ClientKey,
		"CLICKHOUSE_TLS": "true", "CLICKHOUSE_TLS_CA": f.CA, "CLICKHOUSE_ADDR": "db.example.cat:9440"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.TLS.NATS()
	if err != nil || n == nil || n.RootCAs == nil || len(n.Certificates) != 1 {
		t.Fatalf("nats tls: %v %+v", err, n)
	}
	ch, err := c.TLS.ClickHouseConfig()
	if err != nil || ch == nil || ch.RootCAs == nil || ch.InsecureSkipVerify {
		t.Fatalf("clickhouse tls: %v %+v", err, ch)
	}
	// Off by default.
	if c, err = parse(nil, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.TLS.NATS(); n != nil {
		t.Fatal("nats tls on by default")
	}
	if ch, _ := c.TLS.ClickHouseConfig(); ch != nil {
		t.Fatal("clickhouse tls on by default")
	}
	// Unusable files are refused at start, every problem named.
	_, err = parse([]string{"--nats-tls-ca", filepath.Join(t.TempDir(), "missing.pem"), "--clickhouse-tls-ca", f.CA}, nil)
	if err == nil || !strings.Contains(err.Error(), "NATS_TLS_CA") || !strings.Contains(err.Error(), "CLICKHOUSE_TLS is false") {
		t.Fatalf("want both problems, got %v", err)
	}
}

func TestRegisterNATSLeavesClickHouseOut(t *testing.T) {
	var c Settings
	s := config.New("svc", func(k string) string { return map[string]string{"NATS_URL": "tls://nats.example.cat:4222"}[k] })
	RegisterNATS(s, &c)
	if err := s.Parse(nil); err != nil || c.NATSURL != "tls://nats.example.cat:4222" || c.ClickHouseAddr != "" {
		t.Fatalf("%+v %v", c, err)
	}
	if err := s.Parse([]string{"--clickhouse-addr", "db:9000"}); err == nil {
		t.Fatal("a NATS-only service accepted a ClickHouse flag")
	}
	if strings.Contains(s.Usage(), "clickhouse") {
		t.Fatalf("usage mentions ClickHouse:\n%s", s.Usage())
	}
}

func TestClickHouseAddresses(t *testing.T) {
	c, err := parse(nil, map[string]string{"CLICKHOUSE_ADDR": "ch-1:9000, ch-2:9000", "CLICKHOUSE_CLUSTER": "assoliment"})
	if err != nil || c.ClickHouseAddr != "ch-1:9000, ch-2:9000" || c.Cluster != "assoliment" {
		t.Fatalf("%+v %v", c, err)
	}
	for addr, want := range map[string]string{
		"ch-1:9000,ch-1:9000": "lists ch-1:9000 twice",
		"ch-1:9000,":          "several separated by commas",
		"ch-1":                "must be host:port",
	} {
		if _, err := parse(nil, map[string]string{"CLICKHOUSE_ADDR": addr, "CLICKHOUSE_CLUSTER": "x"}); err == nil ||
			!strings.Contains(err.Error(), "CLICKHOUSE_ADDR") || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", addr, err, want)
		}
	}
	if _, err := parse(nil, map[string]string{"CLICKHOUSE_ADDR": "ch-1:9000,ch-2:9000"}); err == nil || !strings.Contains(err.Error(), "CLICKHOUSE_CLUSTER") {
		t.Errorf("several servers without a cluster: %v", err)
	}
	if _, err := parse(nil, map[string]string{"CLICKHOUSE_CLUSTER": "a-b"}); err == nil || !strings.Contains(err.Error(), "CLICKHOUSE_CLUSTER") {
		t.Errorf("cluster name with a dash: %v", err)
	}
}
