package deploytest

import (
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// promConfig is the part of prometheus.yml these tests read.
type promConfig struct {
	Global struct {
		ExternalLabels map[string]string `yaml:"external_labels"`
	} `yaml:"global"`
	Alerting struct {
		Alertmanagers []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"alertmanagers"`
	} `yaml:"alerting"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func loadPromConfig(t *testing.T) promConfig {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c promConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	return c
}

// scrapeTargets lists every static target of prometheus.yml.
func scrapeTargets(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, sc := range loadPromConfig(t).ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			out = append(out, st.Targets...)
		}
	}
	return out
}

// alertmanagerTargets lists the Alertmanagers prometheus.yml sends alerts to.
func alertmanagerTargets(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, am := range loadPromConfig(t).Alerting.Alertmanagers {
		for _, st := range am.StaticConfigs {
			out = append(out, st.Targets...)
		}
	}
	return out
}

func newParser() parser.Parser { return parser.NewParser(parser.Options{}) }

// ruleFiles lists the rule files referenced by prometheus.yml, resolved
// against its directory as Prometheus does.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	dir := repoPath(t, "deploy", "prometheus")
	var out []string
	for _, pattern := range loadPromConfig(t).RuleFiles {
		if filepath.IsAbs(pattern) {
			t.Errorf("rule file %q is absolute; relative paths work both in the repository and in the container", pattern)
			continue
		}
		files, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, files...)
	}
	if len(out) == 0 {
		t.Fatal("prometheus.yml references no rule files")
	}
	slices.Sort(out)
	return out
}

// loadRules parses every rule file with Prometheus' own rule parser.
func loadRules(t *testing.T) map[string]*rulefmt.RuleGroups {
	t.Helper()
	out := map[string]*rulefmt.RuleGroups{}
	logger := slog.New(slog.DiscardHandler)
	for _, f := range ruleFiles(t) {
		groups, errs := rulefmt.ParseFile(f, false, model.UTF8Validation, newParser(), logger)
		for _, err := range errs {
			t.Errorf("%s: %v", rel(t, f), err)
		}
		if groups != nil {
			out[f] = groups
		}
	}
	return out
}

// runbookRE is the one form of runbook_url: the base address of the
// runbooks, from prometheus.yml's external label runbooks, and the alert's
// section.
var runbookRE = regexp.MustCompile(`^\{\{ \$externalLabels\.runbooks \}\}#([a-z0-9-]+)$`)

// TestRunbooksBaseURL checks that alerts link to an absolute address, and
// that it is docs/operations.md, whose sections TestAlertConventions checks.
func TestRunbooksBaseURL(t *testing.T) {
	base := loadPromConfig(t).Global.ExternalLabels["runbooks"]
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		t.Fatalf("prometheus.yml: external label runbooks %q is not an absolute http(s) address without #", base)
	}
	if !strings.HasSuffix(u.Path, "/docs/operations.md") {
		t.Errorf("prometheus.yml: external label runbooks %q is not an address of docs/operations.md", base)
	}
}

// TestAlertConventions checks labels and annotations of every alert, and that
// each runbook anchor exists in docs/operations.md.
func TestAlertConventions(t *testing.T) {
	anchors := markdownAnchors(t, repoPath(t, "docs", "operations.md"))
	seen := map[string]bool{}
	for file, groups := range loadRules(t) {
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				where := rel(t, file) + ": " + r.Alert
				if seen[r.Alert] {
					t.Errorf("%s: alert name used twice", where)
				}
				seen[r.Alert] = true
				if s := r.Labels["severity"]; s != "page" && s != "ticket" {
					t.Errorf("%s: severity %q, want page or ticket", where, s)
				}
				for _, k := range []string{"summary", "description", "runbook_url"} {
					if strings.TrimSpace(r.Annotations[k]) == "" {
						t.Errorf("%s: annotation %s is missing", where, k)
					}
				}
				m := runbookRE.FindStringSubmatch(r.Annotations["runbook_url"])
				if m == nil {
					t.Errorf("%s: runbook_url %q is not {{ $externalLabels.runbooks }}#anchor", where, r.Annotations["runbook_url"])
				} else if !anchors[m[1]] {
					t.Errorf("%s: docs/operations.md has no heading with anchor #%s", where, m[1])
				}
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no alerts found")
	}
}

// ruleTestFile is the part of a promtool rule test file these tests read.
type ruleTestFile struct {
	Tests []struct {
		AlertRuleTests []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertHasUnitTests checks that deploy/prometheus/tests covers each
// alert both firing and not firing.
func TestEveryAlertHasUnitTests(t *testing.T) {
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, f := range globRepo(t, "deploy/prometheus/tests/*.yml") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf ruleTestFile
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("%s: %v", rel(t, f), err)
		}
		for _, tc := range tf.Tests {
			for _, a := range tc.AlertRuleTests {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					quiet[a.Alertname] = true
				}
			}
		}
	}
	for _, groups := range loadRules(t) {
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				if !firing[r.Alert] {
					t.Errorf("alert %s has no unit test where it fires", r.Alert)
				}
				if !quiet[r.Alert] {
					t.Errorf("alert %s has no unit test where it stays quiet", r.Alert)
				}
			}
		}
	}
}

// markdownAnchors returns the GitHub-style anchors of every heading in path.
func markdownAnchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	anchors := map[string]bool{}
	inCode := false
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
			continue
		}
		if inCode || !strings.HasPrefix(line, "#") {
			continue
		}
		anchors[anchor(strings.TrimLeft(line, "# "))] = true
	}
	return anchors
}

// anchor turns a heading into its GitHub anchor: lower case, punctuation
// dropped, spaces to hyphens.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}
