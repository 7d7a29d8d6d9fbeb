// Package connect holds the settings every service that talks to NATS and
// ClickHouse shares, and opens those connections from them.
package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/assoliment/assoliment/services/platform/chconn"
	"github.com/assoliment/assoliment/services/platform/config"
	"github.com/assoliment/assoliment/services/platform/natsconn"
	"github.com/assoliment/assoliment/services/platform/tlsconfig"
)

// Settings name the NATS and ClickHouse servers and credentials.
type Settings struct {
	NATSURL, NATSCreds                       string
	ClickHouseAddr, Database, User, Password string
	// Cluster is the ClickHouse cluster whose replicas ClickHouseAddr
	// lists; empty for one server.
	Cluster string
	TLS     tlsconfig.Settings // NATS and ClickHouse TLS
}

// Register adds the settings to s, with their flags and variables.
func Register(s *config.Set, c *Settings) {
	registerNATS(s, c)
	tlsconfig.Register(s, &c.TLS)
	s.String(&c.ClickHouseAddr, "clickhouse-addr", "CLICKHOUSE_ADDR", "127.0.0.1:9000",
		"ClickHouse native protocol address; comma-separated replicas of CLICKHOUSE_CLUSTER, used one at a time, in order", HostPorts)
	s.String(&c.Cluster, "clickhouse-cluster", "CLICKHOUSE_CLUSTER", "",
		"ClickHouse cluster of replicated tables (empty: one server, plain tables)", clusterName)
	s.String(&c.Database, "clickhouse-database", "CLICKHOUSE_DATABASE", "smartcity", "ClickHouse database", config.Identifier)
	s.String(&c.User, "clickhouse-user", "CLICKHOUSE_USER", "default", "ClickHouse user", nil)
	s.String(&c.Password, "clickhouse-password", "CLICKHOUSE_PASSWORD", "", "ClickHouse password", nil)
}

// RegisterNATS adds only the NATS settings (URL, credentials, TLS), for a
// service that does not talk to ClickHouse; the ClickHouse fields stay
// empty.
func RegisterNATS(s *config.Set, c *Settings) {
	registerNATS(s, c)
	tlsconfig.RegisterNATS(s, &c.TLS)
}

func registerNATS(s *config.Set, c *Settings) {
	s.String(&c.NATSURL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "NATS server URLs", config.NATSURL)
	s.String(&c.NATSCreds, "nats-creds", "NATS_CREDS", "", "NATS credentials file (optional)", nil)
}

// HostPorts checks a comma-separated list of host:port, without repeats.
func HostPorts(v string) error {
	const form = "must be host:port, such as 127.0.0.1:9000, or several separated by commas"
	seen := map[string]bool{}
	for _, a := range strings.Split(v, ",") {
		a = strings.TrimSpace(a)
		if _, _, err := net.SplitHostPort(a); err != nil || a == "" {
			return errors.New(form)
		}
		if seen[a] {
			return fmt.Errorf("lists %s twice", a)
		}
		seen[a] = true
	}
	return nil
}

// clusterName checks a ClickHouse cluster name: empty, or letters, digits
// and '_' (it names ZooKeeper paths and the cluster of the servers'
// remote_servers).
func clusterName(v string) error {
	for _, c := range v {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return errors.New("must be empty or contain only letters, digits and '_'")
		}
	}
	return nil
}

// Check validates what one setting alone cannot (the TLS files, replicas
// without a cluster).
func (c Settings) Check() error {
	err := c.TLS.Check()
	if c.Cluster == "" && strings.Contains(c.ClickHouseAddr, ",") {
		err = errors.Join(err, errors.New("CLICKHOUSE_ADDR (--clickhouse-addr) lists several servers but CLICKHOUSE_CLUSTER (--clickhouse-cluster) is empty: "+
			"several addresses are the replicas of a cluster; name it"))
	}
	return err
}

// ClickHouse connects, retrying for a minute so a service may start before
// its database.
func (c Settings) ClickHouse(ctx context.Context, log *slog.Logger) (*chconn.Conn, error) {
	tc, err := c.TLS.ClickHouseConfig()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		ch, err := chconn.Open(ctx, chconn.Options{Addr: c.ClickHouseAddr, Database: c.Database, User: c.User, Password: c.Password, TLS: tc, Log: log})
		if err == nil {
			return ch, nil
		}
		if attempt >= 60 || ctx.Err() != nil {
			return nil, err
		}
		log.Warn("clickhouse not reachable yet", "addr", c.ClickHouseAddr, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// NATS connects as the named client; it reconnects on its own afterwards.
func (c Settings) NATS(ctx context.Context, name string, log *slog.Logger) (*nats.Conn, error) {
	tc, err := c.TLS.NATS()
	if err != nil {
		return nil, fmt.Errorf("nats tls: %w", err)
	}
	return natsconn.Connect(ctx, natsconn.Options{URL: c.NATSURL, Creds: c.NATSCreds, TLS: tc, Name: name}, log)
}
