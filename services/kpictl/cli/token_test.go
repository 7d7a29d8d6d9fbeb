package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/assoliment/assoliment/services/gateway/tokens"
)

// The token printed once and the entry beside it: the gateway's own parser
// reads the entry, and its hash is the token's.
func TestTokenNew(t *testing.T) {
	r := run(t, nil, "token", "new", "--publisher", "fcc-medi-ambient", "--municipality", "sabadell", "--municipality", "terrassa")
	if r.code != ExitOK || r.stderr != "" {
		t.Fatalf("%+v", r)
	}
	token := ""
	for _, l := range strings.Split(r.stdout, "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, tokens.Prefix) {
			token = t
		}
	}
	entry := r.stdout[strings.Index(r.stdout, "  - publisher:"):]
	got, err := tokens.Parse([]byte("tokens:\n" + entry))
	if err != nil || len(got) != 1 {
		t.Fatalf("entry %q: %v", entry, err)
	}
	if got[0].SHA256 != tokens.Hash(token) || got[0].Publisher != "fcc-medi-ambient" || strings.Join(got[0].Municipalities, ",") != "sabadell,terrassa" {
		t.Fatalf("entry %+v for token %q", got[0], token)
	}

	r = run(t, nil, "token", "new", "--publisher", "council", "--municipality", "sabadell", "--json")
	var out struct{ Token, SHA256, Entry string }
	if r.code != ExitOK || json.Unmarshal([]byte(r.stdout), &out) != nil || out.Token == token || tokens.Hash(out.Token) != out.SHA256 {
		t.Fatalf("%+v", r)
	}
	if _, err := tokens.Parse([]byte("tokens:\n" + out.Entry)); err != nil {
		t.Fatalf("json entry: %v", err)
	}

	for _, args := range [][]string{
		{"token", "new", "--publisher", "council", "--municipality", "sabadell,vic"},
		{"token", "new", "--publisher", "Fcc!", "--municipality", "sabadell"},
		{"token", "new", "--municipality", "sabadell"},
		{"token", "new", "--publisher", "fcc-medi-ambient"},
		{"token"},
	} {
		if r := run(t, nil, args...); r.code != ExitUsage || r.stdout != "" || !strings.Contains(r.stderr, "kpictl token") {
			t.Errorf("%q: %+v", args, r)
		}
	}
}
