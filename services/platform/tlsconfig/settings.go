package tlsconfig

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/assoliment/assoliment/services/platform/config"
)

// Settings are a service's TLS settings towards NATS and ClickHouse.
type Settings struct {
	NATSCA, NATSCert, NATSKey string
	ClickHouse                bool
	ClickHouseCA              string
}

// Register adds the TLS settings to s:
// --nats-tls-ca, --nats-tls-cert, --nats-tls-key, --clickhouse-tls and
// --clickhouse-tls-ca, with the environment variables NATS_TLS_CA,
// NATS_TLS_CERT, NATS_TLS_KEY, CLICKHOUSE_TLS and CLICKHOUSE_TLS_CA.
func Register(s *config.Set, dst *Settings) {
	RegisterNATS(s, dst)
	s.Bool(&dst.ClickHouse, "clickhouse-tls", "CLICKHOUSE_TLS", false, "connect to ClickHouse over TLS (its secure native port, usually 9440)")
	s.String(&dst.ClickHouseCA, "clickhouse-tls-ca", "CLICKHOUSE_TLS_CA", "", "PEM file of the authorities that sign the ClickHouse server's certificate (system roots when empty)", nil)
}

// RegisterNATS adds only the NATS TLS settings, for a service that does
// not talk to ClickHouse.
func RegisterNATS(s *config.Set, dst *Settings) {
	s.String(&dst.NATSCA, "nats-tls-ca", "NATS_TLS_CA", "", "PEM file of the authorities that sign the NATS server's certificate (system roots when empty; setting any NATS TLS file turns TLS on)", nil)
	s.String(&dst.NATSCert, "nats-tls-cert", "NATS_TLS_CERT", "", "PEM client certificate for NATS, for servers with verify: true (with --nats-tls-key)", nil)
	s.String(&dst.NATSKey, "nats-tls-key", "NATS_TLS_KEY", "", "PEM key of --nats-tls-cert", nil)
}

// NATS is the client TLS configuration towards NATS, or nil when no NATS
// TLS file is set (a tls:// URL then still uses TLS, with the system's roots).
func (s Settings) NATS() (*tls.Config, error) {
	o := Options{CAFile: s.NATSCA, CertFile: s.NATSCert, KeyFile: s.NATSKey}
	if o.IsZero() {
		return nil, nil
	}
	c, err := Client(o)
	if err != nil {
		return nil, fmt.Errorf("nats %w", err)
	}
	return c, nil
}

// ClickHouseConfig is the client TLS configuration towards ClickHouse, or
// nil when --clickhouse-tls is off.
func (s Settings) ClickHouseConfig() (*tls.Config, error) {
	if !s.ClickHouse {
		if s.ClickHouseCA != "" {
			return nil, errors.New("clickhouse: --clickhouse-tls-ca / CLICKHOUSE_TLS_CA is set but --clickhouse-tls / CLICKHOUSE_TLS is false")
		}
		return nil, nil
	}
	c, err := Client(Options{CAFile: s.ClickHouseCA})
	if err != nil {
		return nil, fmt.Errorf("clickhouse %w", err)
	}
	return c, nil
}

// Check builds both configurations and reports every problem at once, so a
// service refuses to start with unusable TLS settings.
func (s Settings) Check() error {
	var problems []string
	if _, err := s.NATS(); err != nil {
		problems = append(problems, fmt.Sprintf("--nats-tls-ca/--nats-tls-cert/--nats-tls-key (NATS_TLS_CA/NATS_TLS_CERT/NATS_TLS_KEY): %v", err))
	}
	if _, err := s.ClickHouseConfig(); err != nil {
		problems = append(problems, fmt.Sprintf("--clickhouse-tls/--clickhouse-tls-ca (CLICKHOUSE_TLS/CLICKHOUSE_TLS_CA): %v", err))
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}
