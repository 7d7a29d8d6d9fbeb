package service_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// The tokens file is read again when it changes, without a restart: a new
// token works, a removed one is refused, and a broken file leaves the
// tokens in force.
func TestTokensReloadOnChange(t *testing.T) {
	e := start(t)
	old := e.tokens[provider]
	ok := func(tok string) bool {
		return e.post(t, tok, structured, measurement(t, "t-1", "sabadell", provider)).code == 202
	}
	if !ok(old) {
		t.Fatal("the first token does not work")
	}
	// Rotation: a new token for the same publisher, the old one revoked.
	e.writeTokens(t, map[string][]string{provider: {"sabadell"}})
	fresh := e.tokens[provider]
	testenv.Eventually(t, "the new token to work", 10*time.Second, func() bool { return ok(fresh) })
	if a := e.post(t, old, structured, measurement(t, "t-2", "sabadell", provider)); a.code != 401 {
		t.Fatalf("revoked token: %d %s", a.code, a.body)
	}
	// The new entry names sabadell only.
	e.post(t, fresh, structured, measurement(t, "t-3", "terrassa", provider)).problem(t, 403, "forbidden")

	// A broken file (here, one written in place and cut short) is logged
	// and the tokens in force stay.
	errorsBefore := e.metric(t, "smartcity_gateway_token_reloads_total", `result="error"`)
	if err := os.WriteFile(e.file, []byte("tokens:\n  - publisher: fcc-medi-ambient\n    municipalities: [saba"), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the broken file to be refused", 10*time.Second, func() bool {
		return e.metric(t, "smartcity_gateway_token_reloads_total", `result="error"`) > errorsBefore
	})
	if !ok(fresh) {
		t.Fatal("a broken file took the tokens in force away")
	}
	if e.metric(t, "smartcity_gateway_tokens") != 1 {
		t.Fatal("tokens gauge")
	}
}

// SIGHUP re-reads the file even when no change is seen in its folder: here
// the file is a symbolic link to a file elsewhere, changed in place.
func TestTokensReloadOnSIGHUP(t *testing.T) {
	e := start(t)
	target := filepath.Join(t.TempDir(), "real-tokens.yaml")
	if err := os.Rename(e.file, target); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, e.file); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let the watcher's own reload of the link pass
	e.file = target
	e.writeTokens(t, map[string][]string{contract.Council: {"terrassa"}})
	council := e.tokens[contract.Council]
	time.Sleep(500 * time.Millisecond)
	retired := func() []byte {
		return marshal(t, &contract.Event{ID: "s-1", Source: "urn:council:terrassa", Type: contract.TypeServiceRetired,
			Time: time.Now().Add(-time.Hour), Municipality: "terrassa", Publisher: contract.Council,
			Data: &contract.ServiceRetired{Service: "info-kiosks"}})
	}
	if a := e.post(t, council, structured, retired()); a.code != 401 {
		t.Fatalf("the change was seen without a signal (%d); the test proves nothing", a.code)
	}
	e.reload <- syscall.SIGHUP
	testenv.Eventually(t, "the token to work after SIGHUP", 10*time.Second, func() bool {
		return e.post(t, council, structured, retired()).code == 202
	})
}

// At start, a broken tokens file stops the gateway with every problem and
// its line.
func TestBrokenTokensFileAtStart(t *testing.T) {
	ns := testenv.NATS(t)
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	writeFile(t, file, "tokens:\n  - publisher: council\n    municipalities: [a, b]\n    sha256: 12\n")
	err := runOnce(t, ns, file)
	if err == nil || !strings.Contains(err.Error(), "line 4: tokens[0].sha256") || !strings.Contains(err.Error(), file) {
		t.Fatalf("got %v", err)
	}
}
