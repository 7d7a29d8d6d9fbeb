package contract

import (
	"bytes"
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

// readObject must read what json.Unmarshal reads into a map of raw values,
// and refuse what it refuses: hand-picked cases (duplicate names, escaped
// names, invalid UTF-8, trailing data, truncation, other kinds) and every
// truncation and one-byte change of an event.
func TestReadObjectAsUnmarshal(t *testing.T) {
	event := `{"specversion":"1.0","id":"m-1","source":"/x","type":"cat.smartcity.kpi.measured","time":"2026-11-30T10:00:00Z",` +
		`"municipality":"vic","publisher":"aigues","data":{"service":"water","kpi":"leaks","value":1.5,"unit":"%"}}`
	inputs := []string{event, `{}`, ` { } `, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"\u00e9":"x"}`, "{\"\xff\":1}",
		"{\"a\":\"\xff\"}", `{"a":1} x`, `{"a":1}{}`, `{"a":1`, `{"a":}`, `{"a" 1}`, `{a:1}`, `[1]`, `"s"`, `12`, `null`, ``,
		`{"a":{"b":[1,{"c":null}]},"d":true}`, `{"a":1,}`, "{\"a\":1}\n", `{"a":"\ud800"}`}
	for i := range len(event) {
		inputs = append(inputs, event[:i])
		for _, c := range []byte{'"', '{', '}', ',', ':', '\\', 0, 0xff, ' ', 'x', '1'} {
			changed := []byte(event)
			changed[i] = c
			inputs = append(inputs, string(changed))
		}
	}
	for _, in := range inputs {
		got, err := readObject([]byte(in))
		var want map[string]jsontext.Value
		wantErr := json.Unmarshal([]byte(in), &want)
		if wantErr == nil && jsontext.Value(in).Kind() != '{' {
			continue // another kind of value: Decode never reads it as an object
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: error %v; json.Unmarshal: %v", in, err, wantErr)
		}
		if err != nil {
			continue
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members; json.Unmarshal %d", in, len(got), len(want))
		}
		for name, value := range want {
			if v, _ := got.get(name); !bytes.Equal(v, value) {
				t.Fatalf("%q: member %q is %s; json.Unmarshal %s", in, name, v, value)
			}
		}
	}
}
