package keyring

import (
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/gateway/tokens"
)

func entry(t *testing.T, publisher string, munis ...string) (string, tokens.Entry) {
	t.Helper()
	tok, e, err := tokens.New(publisher, munis)
	if err != nil {
		t.Fatal(err)
	}
	return tok, e
}

func TestAuthenticateAndScope(t *testing.T) {
	k := New(10, 20)
	a, ea := entry(t, "fcc-medi-ambient", "terrassa", "sabadell")
	b, eb := entry(t, "council", "sabadell")
	k.Replace([]tokens.Entry{ea, eb})
	p, ok := k.Authenticate(a)
	if !ok || p.Publisher != "fcc-medi-ambient" || !p.Allows("fcc-medi-ambient", "sabadell") || !p.Allows("fcc-medi-ambient", "terrassa") ||
		p.Allows("fcc-medi-ambient", "lleida") || p.Allows("council", "sabadell") {
		t.Fatalf("%+v %v", p, ok)
	}
	if p, ok := k.Authenticate(b); !ok || p.Publisher != "council" {
		t.Fatal("second token")
	}
	for _, bad := range []string{"", a + " ", a[:len(a)-1], ea.SHA256} {
		if _, ok := k.Authenticate(bad); ok {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// A token kept across a reload keeps its limiter: reloading resets nobody's
// rate. A removed token is gone with its limiter.
func TestReplaceKeepsLimiters(t *testing.T) {
	k := New(1, 5)
	a, ea := entry(t, "fcc-medi-ambient", "sabadell")
	b, eb := entry(t, "bus-vallesa", "sabadell")
	k.Replace([]tokens.Entry{ea, eb})
	pa, _ := k.Authenticate(a)
	if !pa.Limiter.AllowN(time.Now(), 5) {
		t.Fatal("burst")
	}
	k.Replace([]tokens.Entry{ea})
	pa2, _ := k.Authenticate(a)
	if pa2.Limiter != pa.Limiter || pa2.Limiter.Allow() {
		t.Fatal("the limiter was reset by the reload")
	}
	if _, ok := k.Authenticate(b); ok || k.Len() != 1 {
		t.Fatal("removed token still accepted")
	}
}
