package deploytest

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	evaluator "github.com/assoliment/assoliment/services/evaluator/config"
	ingest "github.com/assoliment/assoliment/services/ingest/config"
	simulator "github.com/assoliment/assoliment/services/simulator/config"
)

// TestComposeEnvironmentAcceptedByServices gives each Go service exactly
// the environment compose gives it, with no flags, and checks that the
// service's own configuration validation accepts it.
func TestComposeEnvironmentAcceptedByServices(t *testing.T) {
	forEachVariant(t, checkEnvironmentAccepted)
}

func checkEnvironmentAccepted(t *testing.T, project *types.Project) {
	parsers := map[string]func(getenv func(string) string) error{
		"ingest": func(g func(string) string) error { _, err := ingest.Parse(nil, g); return err },
		"evaluator": func(g func(string) string) error {
			c, err := evaluator.Parse(nil, g)
			if err == nil && !strings.HasPrefix(c.CriteriaFile, "/") {
				t.Errorf("evaluator: CRITERIA_FILE %q is not an absolute path in the container", c.CriteriaFile)
			}
			return err
		},
		"simulator": func(g func(string) string) error { _, err := simulator.Parse(nil, g); return err },
	}
	checked := 0
	for name, svc := range project.Services {
		kind := strings.TrimRight(name, "-0123456789")
		parse, ok := parsers[kind]
		if !ok {
			continue
		}
		env := serviceEnvironment(svc)
		// Secrets are files compose mounts at /run/secrets/<name>: read
		// them where they are on this machine.
		for k, v := range env {
			if name, ok := strings.CutPrefix(v, "/run/secrets/"); ok {
				if sec, ok := project.Secrets[name]; ok {
					env[k] = sec.File
				}
			}
		}
		if err := parse(func(k string) string { return env[k] }); err != nil {
			t.Errorf("%s: its environment in docker-compose.yml is refused by the service:\n%v", name, err)
		}
		checked++
	}
	if checked < 3 {
		t.Errorf("checked %d Go services, want ingest-1, ingest-2, evaluator (and the simulator with profile demo)", checked)
	}
}
