package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/natsauth"
	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// examples splits testdata/examples.jsonl into the council's events and
// the provider's, each in its own file.
func examples(t *testing.T) (council, provider string) {
	t.Helper()
	b, err := os.ReadFile("../testdata/examples.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var c, p []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.Contains(l, `"publisher":"council"`) {
			c = append(c, l)
		} else {
			p = append(p, l)
		}
	}
	dir := t.TempDir()
	council, provider = filepath.Join(dir, "council.jsonl"), filepath.Join(dir, "provider.jsonl")
	writeFile(t, council, strings.Join(c, "\n")+"\n")
	writeFile(t, provider, strings.Join(p, "\n")+"\n")
	return council, provider
}

// On the shipped secure configuration (fresh keys, TLS), each user logs
// in with exactly what natsauth hands out: a provider and a council with
// their seed file and the CA, nothing else (the inbox prefix comes from
// the seed file, or from the events when the file names none), and the
// operator lists and replays dead letters.
func TestSecureBroker(t *testing.T) {
	s := natsauthtest.Start(t, false)
	js := createStreams(t, s.ConnectAs(t, "operator"))
	council, provider := examples(t)
	login := func(user string) map[string]string {
		return map[string]string{"NATS_URL": s.ClientURL(), "NATS_CREDS": s.Seed(t, user), "NATS_TLS_CA": s.Certs.CA}
	}

	if r := run(t, nil, "validate", "--now", now, provider); r.code != ExitOK {
		t.Fatalf("validate: %+v", r)
	}
	r := run(t, nil, "publish", "--now", now, "--nats-url", s.ClientURL(), "--creds", s.Seed(t, "provider-fcc-medi-ambient"),
		"--tls-ca", s.Certs.CA, provider)
	if r.code != ExitOK || !strings.Contains(r.stdout, "3 events: 3 acked") {
		t.Fatalf("provider: %+v", r)
	}
	if r := run(t, login("council-sabadell"), "publish", "--now", now, council); r.code != ExitOK || !strings.Contains(r.stdout, "3 acked") {
		t.Fatalf("council: %+v", r)
	}
	// A seed file without its comments: the prefix is derived from the
	// events' publisher.
	seed, err := os.ReadFile(s.Seed(t, "provider-fcc-medi-ambient"))
	if err != nil {
		t.Fatal(err)
	}
	var bare []string
	for _, l := range strings.Split(string(seed), "\n") {
		if !strings.HasPrefix(l, "#") {
			bare = append(bare, l)
		}
	}
	bareSeed := filepath.Join(t.TempDir(), "bare.nk")
	writeFile(t, bareSeed, strings.Join(bare, "\n"))
	env := login("provider-fcc-medi-ambient")
	env["NATS_CREDS"] = bareSeed
	if r := run(t, env, "publish", "--now", now, provider); r.code != ExitOK || !strings.Contains(r.stdout, "3 acked") {
		t.Fatalf("seed without comments: %+v", r)
	}
	if n := len(streamMsgs(t, js, contract.Stream)); n != 9 {
		t.Fatalf("main stream holds %d messages, want 9", n)
	}
	// The broker refuses, at once: another publisher's subject, or an inbox
	// prefix outside the provider's own.
	r = run(t, login("provider-fcc-medi-ambient"), "publish", "--now", now, council)
	if r.code != ExitFailed || !strings.Contains(r.stderr, `Permissions Violation for Publish to "smartcity.sabadell.council.catalog"`) {
		t.Fatalf("provider sending the council's events: %+v", r)
	}
	r = run(t, login("provider-fcc-medi-ambient"), "publish", "--now", now, "--inbox-prefix", "_INBOX", provider)
	if r.code != ExitFailed || !strings.Contains(r.stderr, "Permissions Violation for Subscription") || !strings.Contains(r.stderr, "--inbox-prefix") {
		t.Fatalf("foreign inbox prefix: %+v", r)
	}
	// Without the CA the server's certificate is not trusted: a failure.
	env = login("provider-fcc-medi-ambient")
	delete(env, "NATS_TLS_CA")
	if r := run(t, env, "publish", "--now", now, provider); r.code != ExitFailed || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("without the CA: %+v", r)
	}

	// The operator: dead letters.
	deadLetter(t, js, measurementSubject, contract.ReasonFutureTime, measurement("m-9"), 10)
	op := login("operator")
	r = run(t, op, "dlq", "list", "--json")
	if r.code != ExitOK || !strings.Contains(r.stdout, `"reason":"future_time"`) {
		t.Fatalf("operator dlq list: %+v", r)
	}
	r = run(t, op, "dlq", "replay", "--reason", "future_time")
	if r.code != ExitOK || !strings.Contains(r.stdout, "1 dead letter replayed") {
		t.Fatalf("operator dlq replay: %+v", r)
	}
	// 9, the 3 stored whose acknowledgement could not reach the foreign
	// inbox, and the replay.
	if n := len(streamMsgs(t, js, contract.Stream)); n != 13 {
		t.Fatalf("main stream holds %d messages after the replay, want 13", n)
	}

	// A provider and a council read their own dead letters, and replay
	// them, with the same credentials and no other flag.
	if _, err := natsauth.EnsureDeadLetterStreams(context.Background(), js, s.Plan); err != nil {
		t.Fatal(err)
	}
	deadLetter(t, js, "smartcity.sabadell.aigues-de-sabadell.measurement", contract.ReasonNonFiniteValue, "{}", 11)
	deadLetter(t, js, "smartcity.sabadell.council.catalog", contract.ReasonMissingField, "{}", 12)
	fcc := login("provider-fcc-medi-ambient")
	var letters []map[string]any
	testenv.Eventually(t, "the provider's dead letter in its copy", 10*time.Second, func() bool {
		r = run(t, fcc, "dlq", "list", "--json")
		letters = jsonLines(t, r.stdout)
		return r.code == ExitOK && len(letters) == 1
	})
	if letters[0]["subject"] != measurementSubject || letters[0]["reason"] != "future_time" || letters[0]["data"] != measurement("m-9") {
		t.Fatalf("provider's dead letters: %v", letters)
	}
	for user, want := range map[string]string{"provider-aigues-de-sabadell": "non_finite_value", "council-sabadell": "missing_field"} {
		testenv.Eventually(t, user+"'s dead letter", 10*time.Second, func() bool {
			r = run(t, login(user), "dlq", "list", "--json")
			letters = jsonLines(t, r.stdout)
			return r.code == ExitOK && len(letters) == 1 && letters[0]["reason"] == want
		})
	}
	r = run(t, fcc, "dlq", "list")
	if !strings.Contains(r.stdout, "future_time") || strings.Contains(r.stdout, "aigues") {
		t.Fatalf("provider's table: %+v", r)
	}
	r = run(t, fcc, "dlq", "replay")
	if r.code != ExitOK || !strings.Contains(r.stdout, "1 dead letter replayed") {
		t.Fatalf("provider's replay: %+v", r)
	}
	if n := len(streamMsgs(t, js, contract.Stream)); n != 14 {
		t.Fatalf("main stream holds %d messages after the provider's replay, want 14", n)
	}
	// The platform's stream is not the provider's to read.
	if r := run(t, fcc, "dlq", "list", "--stream", contract.DeadLetterStream); r.code != ExitFailed {
		t.Fatalf("provider reading the platform's dead letters: %+v", r)
	}
}

func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		out = append(out, m)
	}
	return out
}
