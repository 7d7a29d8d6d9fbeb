package deploytest

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// promtool returns the promtool binary ($PROMTOOL or the one on PATH) and
// fails the test when there is none: these checks are not optional.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: the Prometheus configuration, rules and rule tests cannot be checked. " +
			"Install it (Debian: apt-get install prometheus, which the Makefile does) or set PROMTOOL to its path.")
	}
	return p
}

var warningRE = regexp.MustCompile(`(?i)\bwarn(ing)?\b`)

// runPromtool runs promtool from the repository root and fails on a
// non-zero exit or any warning in its output.
func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s failed: %v\n%s", strings.Join(args, " "), err, out)
	}
	if warningRE.Match(out) {
		t.Fatalf("promtool %s reported warnings:\n%s", strings.Join(args, " "), out)
	}
}

// relAll makes paths relative to the repository root.
func relAll(t *testing.T, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = rel(t, p)
	}
	return out
}

func TestPromtoolCheckConfig(t *testing.T) {
	runPromtool(t, "check", "config", "deploy/prometheus/prometheus.yml")
}

func TestPromtoolCheckRules(t *testing.T) {
	runPromtool(t, append([]string{"check", "rules"}, relAll(t, globRepo(t, "deploy/prometheus/rules/*.yml"))...)...)
}

func TestPromtoolTestRules(t *testing.T) {
	runPromtool(t, append([]string{"test", "rules"}, relAll(t, globRepo(t, "deploy/prometheus/tests/*.yml"))...)...)
}
