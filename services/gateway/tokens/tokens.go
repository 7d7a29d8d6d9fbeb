// Package tokens is the HTTP gateway's tokens file and the generator of new
// tokens. A token itself is never stored: the file holds the hex SHA-256 of
// each token, the publisher it speaks for and the municipalities it may send
// events about, so a copy of the file does not let anyone publish.
package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/assoliment/assoliment/services/contract"
)

// Prefix starts every generated token, so that secret scanners and people
// recognise one.
const Prefix = "asl_"

// randomBytes is the token's entropy: 256 bits.
const randomBytes = 32

// Entry is one token of the file.
type Entry struct {
	Publisher      string   // the publisher id every event sent with the token must name
	Municipalities []string // the municipalities its events may be about
	SHA256         string   // lower-case hex SHA-256 of the token
	Line           int      // line of the entry in its file; 0 when generated
}

// New returns a fresh random token for publisher and municipalities, to be
// shown once to its holder, and the entry to add to the tokens file.
func New(publisher string, municipalities []string) (token string, entry Entry, err error) {
	entry = Entry{Publisher: publisher, Municipalities: slices.Clone(municipalities)}
	if err := entry.check(); err != nil {
		return "", Entry{}, err
	}
	b := make([]byte, randomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", Entry{}, fmt.Errorf("random token: %w", err)
	}
	token = Prefix + base64.RawURLEncoding.EncodeToString(b)
	entry.SHA256 = Hash(token)
	return token, entry, nil
}

// Hash is the hex SHA-256 of a token, as written in the tokens file.
func Hash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// YAML is the entry as an item of the file's tokens list, ready to paste
// under "tokens:".
func (e Entry) YAML() string {
	return fmt.Sprintf("  - publisher: %s\n    municipalities: [%s]\n    sha256: %s\n",
		e.Publisher, strings.Join(e.Municipalities, ", "), e.SHA256)
}

// check applies the rules of an entry: valid ids, at least one municipality
// and no repeats, and a council's token for exactly one municipality.
func (e Entry) check() error {
	var problems []string
	if !contract.ValidSlug(e.Publisher) {
		problems = append(problems, fmt.Sprintf("publisher %q must match ^[a-z0-9][a-z0-9-]{0,62}$", e.Publisher))
	}
	switch {
	case len(e.Municipalities) == 0:
		problems = append(problems, "municipalities must list at least one municipality id")
	case e.Publisher == contract.Council && len(e.Municipalities) != 1:
		problems = append(problems, fmt.Sprintf("a council's token is for exactly one municipality, not %d", len(e.Municipalities)))
	}
	seen := map[string]bool{}
	for _, m := range e.Municipalities {
		if !contract.ValidSlug(m) {
			problems = append(problems, fmt.Sprintf("municipality %q must match ^[a-z0-9][a-z0-9-]{0,62}$", m))
		}
		if seen[m] {
			problems = append(problems, fmt.Sprintf("municipality %q is listed twice", m))
		}
		seen[m] = true
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Load reads and checks a tokens file. See Parse.
func Load(path string) ([]Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	entries, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return entries, nil
}

// Parse reads a tokens file:
//
//	tokens:
//	  - publisher: fcc-medi-ambient
//	    municipalities: [sabadell, terrassa]
//	    sha256: 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae
//
// Every key is required and no other key is allowed. Every problem is
// reported at once, each with its line. An empty file is refused (it is
// what a half-written file looks like); "tokens: []" is a valid file that
// lets nobody in.
func Parse(data []byte) ([]Entry, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, errors.New("the file is empty; it must hold a \"tokens:\" list (\"tokens: []\" for none)")
	}
	p := &parser{}
	root := doc.Content[0]
	var list *yaml.Node
	if root.Kind != yaml.MappingNode {
		p.fail(root, "top level", "must be a mapping with the single key \"tokens\"")
	} else {
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			switch {
			case k.Value != "tokens":
				p.fail(k, k.Value, "unknown key; the only top-level key is \"tokens\"")
			case list != nil:
				p.fail(k, "tokens", "defined more than once")
			default:
				list = v
			}
		}
		if list == nil {
			p.fail(root, "tokens", "missing; the file must hold a \"tokens:\" list")
		}
	}
	var entries []Entry
	if list != nil {
		if list.Kind != yaml.SequenceNode {
			p.fail(list, "tokens", "must be a list of entries (publisher, municipalities, sha256)")
		} else {
			for i, n := range list.Content {
				if e, ok := p.entry(fmt.Sprintf("tokens[%d]", i), n); ok {
					entries = append(entries, e)
				}
			}
		}
	}
	firstLine := map[string]int{}
	for _, e := range entries {
		if l, dup := firstLine[e.SHA256]; dup {
			p.errs = append(p.errs, fmt.Errorf("line %d: sha256 is the same as the entry on line %d; every token must be different", e.Line, l))
			continue
		}
		firstLine[e.SHA256] = e.Line
	}
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return entries, nil
}

type parser struct{ errs []error }

func (p *parser) fail(n *yaml.Node, key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("line %d: %s: %s", n.Line, key, fmt.Sprintf(format, args...)))
}

// entry reads one item of the tokens list.
func (p *parser) entry(key string, n *yaml.Node) (Entry, bool) {
	e := Entry{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		p.fail(n, key, "must be a mapping with publisher, municipalities and sha256")
		return e, false
	}
	before := len(p.errs)
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := key + "." + k.Value
		if seen[k.Value] {
			p.fail(k, field, "defined more than once")
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "publisher":
			if s, ok := p.scalar(field, v); ok {
				e.Publisher = s
				if !contract.ValidSlug(s) {
					p.fail(v, field, "%q must match ^[a-z0-9][a-z0-9-]{0,62}$", s)
				}
			}
		case "municipalities":
			if v.Kind != yaml.SequenceNode {
				p.fail(v, field, "must be a list of municipality ids, such as [sabadell, terrassa]")
				continue
			}
			for j, m := range v.Content {
				if s, ok := p.scalar(fmt.Sprintf("%s[%d]", field, j), m); ok {
					e.Municipalities = append(e.Municipalities, s)
					if !contract.ValidSlug(s) {
						p.fail(m, fmt.Sprintf("%s[%d]", field, j), "%q must match ^[a-z0-9][a-z0-9-]{0,62}$", s)
					}
				}
			}
		case "sha256":
			s, ok := p.scalar(field, v)
			if !ok {
				continue
			}
			b, err := hex.DecodeString(s)
			if err != nil || len(b) != sha256.Size {
				p.fail(v, field, "must be 64 hexadecimal digits (the SHA-256 of the token, never the token itself), got %d characters", len(s))
				continue
			}
			e.SHA256 = hex.EncodeToString(b)
		default:
			p.fail(k, field, "unknown key; expected publisher, municipalities and sha256")
		}
	}
	for _, k := range []string{"publisher", "municipalities", "sha256"} {
		if !seen[k] {
			p.fail(n, key+"."+k, "missing")
		}
	}
	if len(p.errs) > before {
		return e, false
	}
	if err := e.check(); err != nil {
		p.fail(n, key, "%v", err)
		return e, false
	}
	return e, true
}

// scalar reads a plain value; YAML's typing is ignored (a municipality id
// such as 080193 stays text), except that null is missing.
func (p *parser) scalar(key string, n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, key, "must be a single value")
		return "", false
	}
	return n.Value, true
}
