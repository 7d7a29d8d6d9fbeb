package contract

import (
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// TestIDPatternsAsRegexps: the byte checks of ids accept exactly what their
// regular expressions do, on every short string over an alphabet with
// each kind of character, and on random bytes of every length around 63.
func TestIDPatternsAsRegexps(t *testing.T) {
	alphabet := []byte{'a', 'z', '0', '9', '-', '_', 'A', '.', ' ', '\n', 0xc3}
	var inputs []string
	var grow func(prefix []byte)
	grow = func(prefix []byte) {
		inputs = append(inputs, string(prefix))
		if len(prefix) == 3 {
			return
		}
		for _, c := range alphabet {
			grow(append(prefix, c))
		}
	}
	grow(nil)
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 70 {
		for range 50 {
			b := make([]byte, n)
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
				if rng.IntN(4) > 0 { // mostly valid characters, so long valid ids occur
					b[i] = "az09-_"[rng.IntN(6)]
				}
			}
			inputs = append(inputs, string(b), "a"+string(b), string(b)+"\n")
		}
	}
	for _, p := range []namePattern{slugRE, tokenRE} {
		re := regexp.MustCompile(p.String())
		for _, s := range inputs {
			if got, want := p.MatchString(s), re.MatchString(s); got != want {
				t.Errorf("%s: %q: %v, the regular expression says %v", p, s, got, want)
			}
		}
	}
}

// TestStrAsUnmarshal: str reads every JSON string as json.Unmarshal does,
// with or without escapes, and refuses what it refuses.
func TestStrAsUnmarshal(t *testing.T) {
	for _, raw := range []string{`"abc"`, `""`, `"a\"b"`, `"\u0041"`, `"é"`, `"\u00e9"`, `"a\\b"`, `"tab\there"`, "\"\xff\"",
		"\"a\tb\"", `"a/b"`, `"~ !"`, `12`, `"unterminated`, `"a"b"`, `null`} {
		got, ok := str(jsontext.Value(raw))
		var want string
		err := json.Unmarshal([]byte(raw), &want)
		if wantOK := err == nil && jsontext.Value(raw).Kind() == '"'; ok != wantOK || ok && got != want {
			t.Errorf("%s: %q %v; json.Unmarshal %q %v", raw, got, ok, want, err)
		}
	}
}
