// Package tlsconfig builds the client TLS configuration the services use
// towards NATS and ClickHouse from PEM files named in their settings. The
// server's certificate is always verified: there is no option to skip it.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Options name the PEM files of a client TLS configuration.
type Options struct {
	// CAFile holds the certificates that may sign the server's certificate;
	// the system's roots are used when empty.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, for
	// servers that ask for one; both or neither.
	CertFile, KeyFile string
	// ServerName overrides the name checked in the server's certificate
	// (by default the host of the address dialled).
	ServerName string
}

// IsZero reports whether no file and no server name is set.
func (o Options) IsZero() bool { return o == Options{} }

// Client returns a client configuration: TLS 1.2 or newer, the server's
// certificate verified against CAFile (or the system's roots), and the
// client certificate when given.
func Client(o Options) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls CA file %s: no PEM certificate found", o.CAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate %s with key %s: %w", o.CertFile, o.KeyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	case o.CertFile != "" || o.KeyFile != "":
		return nil, errors.New("tls client certificate and key go together: set both or neither")
	}
	return c, nil
}
