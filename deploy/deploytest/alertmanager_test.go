package deploytest

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// amtool returns the amtool binary ($AMTOOL or the one on PATH) and fails
// the test when there is none: the Alertmanager configuration must be
// checked.
func amtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("AMTOOL"); p != "" {
		return p
	}
	p, err := exec.LookPath("amtool")
	if err != nil {
		t.Fatal("amtool is not installed: the Alertmanager configuration cannot be checked. " +
			"Install it (Debian: apt-get install prometheus-alertmanager, which `make deps` does) or set AMTOOL to its path.")
	}
	return p
}

// alertmanagerConfig is the part of alertmanager.yml these tests read.
type alertmanagerConfig struct {
	Global struct {
		SMTPAuthPasswordFile string `yaml:"smtp_auth_password_file"`
	} `yaml:"global"`
	Route struct {
		GroupBy []string `yaml:"group_by"`
	} `yaml:"route"`
	InhibitRules []struct {
		SourceMatchers []string `yaml:"source_matchers"`
		TargetMatchers []string `yaml:"target_matchers"`
		Equal          []string `yaml:"equal"`
	} `yaml:"inhibit_rules"`
}

func loadAlertmanagerConfig(t *testing.T) alertmanagerConfig {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "deploy", "alertmanager", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c alertmanagerConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("alertmanager.yml: %v", err)
	}
	return c
}

func TestAmtoolCheckConfig(t *testing.T) {
	cmd := exec.Command(amtool(t), "check-config", "deploy/alertmanager/alertmanager.yml")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}

// TestAlertmanagerRoutes checks who receives each severity, with amtool's
// own routing of the shipped configuration.
func TestAlertmanagerRoutes(t *testing.T) {
	cases := map[string][]string{
		"severity=page":   {"on-call-webhook", "operations-email"},
		"severity=ticket": {"operations-email"},
	}
	for labels, want := range cases {
		args := append([]string{"config", "routes", "test", "--config.file=deploy/alertmanager/alertmanager.yml"},
			strings.Fields(labels+" municipality=sabadell provider=fcc-medi-ambient")...)
		cmd := exec.Command(amtool(t), args...)
		cmd.Dir = repoRoot(t)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("amtool %s: %v", strings.Join(args, " "), err)
		}
		got := strings.Split(strings.TrimSpace(string(out)), ",")
		if !slices.Equal(got, want) {
			t.Errorf("%s goes to %v, want %v", labels, got, want)
		}
	}
}

// TestAlertmanagerGroupingAndInhibition checks that notifications group by
// municipality and provider, and that SLA alerts are held back while their
// municipality has stopped reporting; every alert named in an inhibition
// exists in the rules.
func TestAlertmanagerGroupingAndInhibition(t *testing.T) {
	c := loadAlertmanagerConfig(t)
	for _, l := range []string{"municipality", "provider"} {
		if !slices.Contains(c.Route.GroupBy, l) {
			t.Errorf("route.group_by %v lacks %s", c.Route.GroupBy, l)
		}
	}
	alerts := map[string]bool{}
	for _, groups := range loadRules(t) {
		for _, g := range groups.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					alerts[r.Alert] = true
				}
			}
		}
	}
	slaHeld := false
	for _, ir := range c.InhibitRules {
		for _, m := range append(slices.Clone(ir.SourceMatchers), ir.TargetMatchers...) {
			v, ok := strings.CutPrefix(m, "alertname=~")
			if !ok {
				v, ok = strings.CutPrefix(m, "alertname=")
			}
			if !ok {
				continue
			}
			for name := range strings.SplitSeq(strings.Trim(v, `"`), "|") {
				if !alerts[name] {
					t.Errorf("inhibit rule names alert %s, which no rule defines", name)
				}
			}
		}
		if slices.Contains(ir.SourceMatchers, `alertname="MunicipalityStoppedReporting"`) &&
			slices.Equal(ir.Equal, []string{"municipality"}) &&
			slices.ContainsFunc(ir.TargetMatchers, func(m string) bool { return strings.Contains(m, "SLAErrorBudgetBurnFast") }) {
			slaHeld = true
		}
	}
	if !slaHeld {
		t.Error("no inhibit rule holds back a municipality's SLA alerts while MunicipalityStoppedReporting fires for it")
	}
}
