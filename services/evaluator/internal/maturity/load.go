package maturity

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/assoliment/assoliment/services/platform/config"
)

// LoadConfig reads a criteria file (YAML). See ParseConfig.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("criteria file %s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig reads the YAML of a criteria file over DefaultConfig: omitted
// keys keep their defaults. Unknown keys, wrong types and out-of-range values
// are refused, all of them at once, each error naming its key and the form
// expected. Durations are read by the platform's one duration parser: Go
// duration strings ("720h"), whole days ("30d") or both ("1d12h").
func ParseConfig(data []byte) (Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Config{}, err
	}
	cfg := DefaultConfig()
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
		return cfg, nil // empty file
	}
	p := parser{leaves: map[string]setting{}, sections: map[string][]string{}}
	for _, s := range cfg.settings() {
		p.leaves[s.key] = s
		key := s.key
		for {
			i := strings.LastIndexByte(key, '.')
			parent, name := "", key
			if i >= 0 {
				parent, name = key[:i], key[i+1:]
			}
			if !slices.Contains(p.sections[parent], name) {
				p.sections[parent] = append(p.sections[parent], name)
			}
			if i < 0 {
				break
			}
			key = parent
		}
	}
	p.mapping("", doc.Content[0])
	if err := errors.Join(p.errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

type parser struct {
	leaves   map[string]setting  // key -> field
	sections map[string][]string // section ("" for the top) -> its keys
	errs     []error
}

func (p *parser) fail(key string, n *yaml.Node, format string, args ...any) {
	if key == "" {
		key = "top level"
	}
	p.errs = append(p.errs, fmt.Errorf("%s: %s (line %d)", key, fmt.Sprintf(format, args...), n.Line))
}

// mapping reads the keys of section prefix from n.
func (p *parser) mapping(prefix string, n *yaml.Node) {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.fail(prefix, n, "must be a mapping of keys (%s), got %s", strings.Join(p.sections[prefix], ", "), describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		key := k.Value
		if prefix != "" {
			key = prefix + "." + k.Value
		}
		switch {
		case k.Kind != yaml.ScalarNode || !slices.Contains(p.sections[prefix], k.Value):
			p.fail(key, k, "unknown key; expected one of %s", strings.Join(p.sections[prefix], ", "))
		case seen[k.Value]:
			p.fail(key, k, "defined more than once")
		default:
			seen[k.Value] = true
			if s, ok := p.leaves[key]; ok {
				p.leaf(s, resolve(v))
			} else {
				p.mapping(key, v)
			}
		}
	}
}

// leaf reads the value of s from n.
func (p *parser) leaf(s setting, n *yaml.Node) {
	ok := false
	if n.Kind == yaml.ScalarNode {
		switch {
		case s.kind == kindDuration && n.Tag == "!!str":
			d, err := config.ParseDuration(n.Value)
			*s.dur, ok = d, err == nil
		case s.kind == kindCount && n.Tag == "!!int":
			ok = n.Decode(s.count) == nil
		case s.kind == kindShare && (n.Tag == "!!int" || n.Tag == "!!float"):
			ok = n.Decode(s.share) == nil
		}
	}
	if !ok || s.check() != nil {
		p.fail(s.key, n, "%s, got %s", s.expected(), describe(n))
	}
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe shows a value in an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!null":
		return "nothing"
	case "!!str":
		return strconv.Quote(n.Value)
	}
	return n.Value
}
