package cliflags

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/urfave/cli/v3"

	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
)

type settings struct {
	nats  NATS
	n     int
	every time.Duration
	at    time.Time
	mode  string
}

// parse runs a command with the NATS flags and one flag of each parser.
func parse(args []string, env map[string]string) (settings, string, error) {
	var s settings
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	cmd := &cli.Command{
		Name: "tool", Writer: &out, ErrWriter: &out,
		Flags: append(NATSFlags(&s.nats, getenv),
			&cli.StringFlag{Name: "n", Value: "10", Sources: Env(getenv, "N"), Validator: Into(&s.n, IntIn(1, 100)), ValidateDefaults: true},
			&cli.StringFlag{Name: "every", Value: "30s", Sources: Env(getenv, "EVERY"), Validator: Into(&s.every, DurationIn(time.Second, 400*24*time.Hour)), ValidateDefaults: true},
			&cli.StringFlag{Name: "at", Sources: Env(getenv, "AT"), Validator: Into(&s.at, Time)},
			&cli.StringFlag{Name: "mode", Value: "run", Sources: Env(getenv, "MODE"), Validator: Into(&s.mode, OneOf("run", "load")), ValidateDefaults: true},
		),
		OnUsageError: func(_ context.Context, _ *cli.Command, err error, _ bool) error { return err },
		Action:       func(context.Context, *cli.Command) error { return nil },
	}
	err := cmd.Run(context.Background(), append([]string{"tool"}, args...))
	return s, out.String(), err
}

func TestDefaultsEnvAndFlags(t *testing.T) {
	s, _, err := parse(nil, nil)
	if err != nil || s.nats.URL != "nats://127.0.0.1:4222" || s.n != 10 || s.every != 30*time.Second || s.mode != "run" || !s.at.IsZero() {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	env := map[string]string{"NATS_URL": "tls://env:4222", "NATS_CREDS": "/env.nk", "N": "20", "EVERY": "2d", "NATS_TLS_CA": "/ca.pem", "MODE": ""}
	s, _, err = parse([]string{"--n", "7", "--nats-creds", "/flag.nk", "--at", "2026-11-20T13:00:00+01:00"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if s.nats.URL != "tls://env:4222" || s.nats.Creds != "/flag.nk" || s.nats.TLS.CAFile != "/ca.pem" || s.n != 7 || s.every != 48*time.Hour ||
		s.mode != "run" || !s.at.Equal(time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("flag over variable over default: %+v", s)
	}
}

// Each bad value is refused with the flag or the variable it came from and
// the form expected.
func TestErrorsNameTheSourceAndTheForm(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"--nats-url", "http://x"}, nil, []string{"nats-url", "nats://host:port"}},
		{nil, map[string]string{"NATS_URL": "nats://a,ws://b"}, []string{"NATS_URL", "nats-url", "must not mix"}},
		{[]string{"--inbox-prefix", "_INBOX.*"}, nil, []string{"inbox-prefix", "without spaces or wildcards"}},
		{nil, map[string]string{"N": "x"}, []string{"N", "whole number from 1 to 100"}},
		{[]string{"--n", "101"}, nil, []string{"-n", "whole number from 1 to 100"}},
		{[]string{"--every", "213504d"}, nil, []string{"every", "from 1s to 400d"}},
		{[]string{"--every", "-1d"}, nil, []string{"every", "90s, 72h or 400d"}},
		{nil, map[string]string{"AT": "yesterday"}, []string{"AT", "RFC 3339"}},
		{[]string{"--mode", "fast"}, nil, []string{"mode", "one of run, load"}},
	} {
		_, _, err := parse(c.args, c.env)
		if err == nil {
			t.Errorf("%q %v accepted", c.args, c.env)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q %v: error %q does not mention %q", c.args, c.env, err, w)
			}
		}
	}
}

func TestHelpShowsVariables(t *testing.T) {
	_, out, err := parse([]string{"--help"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"NATS connection", "$NATS_URL", "--creds", "--nats-creds", "$NATS_CREDS", "$NATS_INBOX_PREFIX", "--tls-ca", "$NATS_TLS_CA"} {
		if !strings.Contains(out, w) {
			t.Errorf("help lacks %q:\n%s", w, out)
		}
	}
}

// Against the shipped secure configuration, a provider's seed file and the
// CA are all it takes: the inbox prefix comes from the seed file, and the
// broker's acknowledgement arrives.
func TestConnectAsProvider(t *testing.T) {
	s := natsauthtest.Start(t, false)
	ctx := context.Background()
	op := s.ConnectAs(t, "operator")
	opjs, err := jetstream.New(op)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := opjs.CreateStream(ctx, jetstream.StreamConfig{Name: "SMARTCITY", Subjects: []string{"smartcity.>"}}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	set, _, err := parse([]string{"--nats-url", s.ClientURL(), "--creds", s.Seed(t, "provider-fcc-medi-ambient"), "--tls-ca", s.Certs.CA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := set.nats.Connect(ctx, "test", 1, log)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := js.Publish(pctx, "smartcity.sabadell.fcc-medi-ambient.measurement", []byte("{}")); err != nil {
		t.Fatalf("publish: %v", err)
	}

	// Without the CA the server's certificate is not trusted.
	set.nats.TLS.CAFile = ""
	if _, err := set.nats.Connect(ctx, "test", 1, log); err == nil {
		t.Fatal("connected without trusting the server's certificate")
	}
	set.nats.TLS.CAFile = "/no/such/ca.pem"
	if _, err := set.nats.Connect(ctx, "test", 1, log); err == nil || !strings.Contains(err.Error(), "NATS_TLS_CA") {
		t.Fatalf("unreadable CA: %v", err)
	}
}
