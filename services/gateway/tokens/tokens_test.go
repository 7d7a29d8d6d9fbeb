package tokens

import (
	"strings"
	"testing"
)

func TestNewIsRandomAndItsEntryParses(t *testing.T) {
	tok, e, err := New("fcc-medi-ambient", []string{"sabadell", "terrassa"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, Prefix) || len(tok) < len(Prefix)+43 {
		t.Fatalf("token %q: want %s and at least 256 bits in base64url", tok, Prefix)
	}
	if e.SHA256 != Hash(tok) || strings.Contains(e.YAML(), tok) {
		t.Fatalf("entry %+v must hold the hash and never the token", e)
	}
	other, _, err := New("fcc-medi-ambient", []string{"sabadell"})
	if err != nil || other == tok {
		t.Fatalf("two tokens are equal or failed: %v", err)
	}
	entries, err := Parse([]byte("tokens:\n" + e.YAML()))
	if err != nil {
		t.Fatalf("generated entry does not parse: %v\n%s", err, e.YAML())
	}
	got := entries[0]
	if got.Publisher != "fcc-medi-ambient" || strings.Join(got.Municipalities, ",") != "sabadell,terrassa" || got.SHA256 != e.SHA256 || got.Line != 2 {
		t.Fatalf("parsed %+v", got)
	}
}

func TestNewRefusesBadScopes(t *testing.T) {
	for _, c := range []struct {
		publisher string
		munis     []string
		want      string
	}{
		{"FCC", []string{"sabadell"}, "publisher"},
		{"fcc", nil, "at least one"},
		{"fcc", []string{"Sabadell"}, "municipality"},
		{"fcc", []string{"sabadell", "sabadell"}, "twice"},
		{"council", []string{"sabadell", "terrassa"}, "exactly one"},
	} {
		if _, _, err := New(c.publisher, c.munis); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q, %q) = %v, want an error about %s", c.publisher, c.munis, err, c.want)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	entries, err := Parse([]byte(`# tokens of the gateway
tokens:
  - publisher: fcc-medi-ambient
    municipalities: [sabadell, terrassa]
    sha256: 2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE  # upper case is fine
  - publisher: council
    municipalities:
      - "080187"
    sha256: "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].SHA256 != "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae" ||
		entries[1].Municipalities[0] != "080187" || entries[1].Line != 6 {
		t.Fatalf("%+v", entries)
	}
	none, err := Parse([]byte("tokens: []\n"))
	if err != nil || len(none) != 0 {
		t.Fatalf("an empty list is a valid file: %v", err)
	}
}

func TestParseListsEveryProblemWithItsLine(t *testing.T) {
	_, err := Parse([]byte(`tokens:
  - publisher: fcc-medi-ambient
    municipalities: [sabadell]
    sha256: not-a-hash
  - publisher: council
    municipalities: [sabadell, terrassa]
    sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
  - publisher: Bad_Id
    municipalities: sabadell
    sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
    token: asl_secret
  - publisher: other
    municipalities: [sabadell]
    sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
  - publisher: again
    municipalities: [sabadell]
    sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
  - publisher: x
extra: 1
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"line 4: tokens[0].sha256: must be 64 hexadecimal digits",
		"line 5: tokens[1]: a council's token is for exactly one municipality",
		"line 9: tokens[2].municipalities: must be a list",
		"line 11: tokens[2].token: unknown key",
		"line 8: tokens[2].publisher: \"Bad_Id\" must match",
		"line 15: sha256 is the same as the entry on line 12",
		"line 18: tokens[5].municipalities: missing",
		"line 18: tokens[5].sha256: missing",
		"line 19: extra: unknown key",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

func TestParseRefusesEmptyAndForeignFiles(t *testing.T) {
	for _, in := range []string{"", "   \n# nothing\n", "tokens: {}\n", "- a\n", "tokens:\n  - a\n", "{"} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
}
