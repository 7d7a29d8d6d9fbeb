package deploytest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// serviceEnv lists the environment keys each Go service must be given.
var serviceEnv = map[string][]string{
	"ingest-1": {"NATS_URL", "CLICKHOUSE_ADDR", "CLICKHOUSE_DATABASE", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "HTTP_ADDR"},
	"ingest-2": {"NATS_URL", "CLICKHOUSE_ADDR", "CLICKHOUSE_DATABASE", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "HTTP_ADDR"},
	"evaluator": {"NATS_URL", "CLICKHOUSE_ADDR", "CLICKHOUSE_DATABASE", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "HTTP_ADDR",
		"EVALUATION_INTERVAL", "CRITERIA_FILE"},
	"gateway":   {"NATS_URL", "HTTP_ADDR", "GATEWAY_TOKENS_FILE"},
	"simulator": {"NATS_URL", "SIMULATOR_SEED"},
}

// serviceHTTPAddr is the listen address each HTTP service must use inside
// its container, so that Prometheus and health checks can reach it.
var serviceHTTPAddr = map[string]string{
	"ingest-1":  "0.0.0.0:8081",
	"ingest-2":  "0.0.0.0:8081",
	"evaluator": "0.0.0.0:8080",
	"gateway":   "0.0.0.0:8082",
}

// loadCompose loads docker-compose.yml as docker compose would, with only the
// defaults written in the file (no host environment, no .env file).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(nil),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	project, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return project
}

func TestComposeParses(t *testing.T) {
	project := loadCompose(t)
	want := []string{"nats", "clickhouse", "ingest-1", "ingest-2", "evaluator", "gateway", "simulator", "prometheus", "grafana"}
	for _, name := range want {
		if _, ok := project.Services[name]; !ok {
			t.Errorf("service %q is missing", name)
		}
	}
	for name := range project.Services {
		if !slices.Contains(want, name) {
			t.Errorf("unexpected service %q: add it to this test with its checks", name)
		}
	}
}

func TestComposeBindMountsExist(t *testing.T) {
	project := loadCompose(t)
	root := repoRoot(t)
	for name, svc := range project.Services {
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if !strings.HasPrefix(v.Source, root+string(filepath.Separator)) {
				t.Errorf("%s: bind mount %s is outside the repository", name, v.Source)
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: bind-mounted %s does not exist", name, rel(t, v.Source))
			}
			if !v.ReadOnly {
				t.Errorf("%s: bind mount %s should be read-only", name, rel(t, v.Source))
			}
		}
	}
}

func TestComposeNamedVolumesDeclared(t *testing.T) {
	project := loadCompose(t)
	for name, svc := range project.Services {
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeVolume {
				continue
			}
			if _, ok := project.Volumes[v.Source]; !ok {
				t.Errorf("%s: volume %q is not declared at the top level", name, v.Source)
			}
		}
	}
}

func TestComposeBuildContextsExist(t *testing.T) {
	project := loadCompose(t)
	targets := map[string]string{
		"ingest-1": "ingest", "ingest-2": "ingest", "evaluator": "evaluator", "gateway": "gateway", "simulator": "simulator",
	}
	for name, target := range targets {
		svc, ok := project.Services[name]
		if !ok || svc.Build == nil {
			t.Errorf("%s: no build section", name)
			continue
		}
		if fi, err := os.Stat(svc.Build.Context); err != nil || !fi.IsDir() {
			t.Errorf("%s: build context %s is not a directory", name, svc.Build.Context)
			continue
		}
		dockerfile := svc.Build.Dockerfile
		if !filepath.IsAbs(dockerfile) {
			dockerfile = filepath.Join(svc.Build.Context, dockerfile)
		}
		content, err := os.ReadFile(dockerfile)
		if err != nil {
			t.Errorf("%s: Dockerfile: %v", name, err)
			continue
		}
		if svc.Build.Target != target {
			t.Errorf("%s: build target %q, want %q", name, svc.Build.Target, target)
		}
		if !strings.Contains(string(content), " AS "+target+"\n") {
			t.Errorf("%s: %s has no stage named %q", name, rel(t, dockerfile), target)
		}
	}
	for name, svc := range project.Services {
		if svc.Build == nil && svc.Image == "" {
			t.Errorf("%s: neither image nor build", name)
		}
		if svc.Build == nil && (strings.HasSuffix(svc.Image, ":latest") || !strings.Contains(svc.Image, ":")) {
			t.Errorf("%s: image %q is not pinned to a tag", name, svc.Image)
		}
	}
}

func TestComposePortsBindLoopback(t *testing.T) {
	project := loadCompose(t)
	for name, svc := range project.Services {
		for _, p := range svc.Ports {
			if p.Published == "" {
				continue
			}
			if p.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %s:%d is published on %q, want 127.0.0.1", name, p.Published, p.Target, p.HostIP)
			}
		}
	}
}

func TestComposePublishedPortsUnique(t *testing.T) {
	project := loadCompose(t)
	seen := map[string]string{}
	for name, svc := range project.Services {
		for _, p := range svc.Ports {
			if p.Published == "" {
				continue
			}
			key := p.HostIP + ":" + p.Published + "/" + p.Protocol
			if other, ok := seen[key]; ok {
				t.Errorf("%s and %s both publish %s", other, name, key)
			}
			seen[key] = name
		}
	}
}

func TestComposeHealthchecksAndRestart(t *testing.T) {
	project := loadCompose(t)
	for name, svc := range project.Services {
		hc := svc.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
			t.Errorf("%s: no health check", name)
		}
		if svc.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("%s: restart %q, want %q", name, svc.Restart, types.RestartPolicyUnlessStopped)
		}
	}
}

func TestComposeServiceEnvironment(t *testing.T) {
	project := loadCompose(t)
	for name, keys := range serviceEnv {
		svc, ok := project.Services[name]
		if !ok {
			t.Errorf("service %q is missing", name)
			continue
		}
		env := serviceEnvironment(svc)
		for _, key := range keys {
			if env[key] == "" {
				t.Errorf("%s: environment %s is missing or empty", name, key)
			}
		}
		if want, ok := serviceHTTPAddr[name]; ok && env["HTTP_ADDR"] != want {
			t.Errorf("%s: HTTP_ADDR %q, want %s", name, env["HTTP_ADDR"], want)
		}
	}
}

// TestComposeCriteriaFileMounted checks that the evaluator's CRITERIA_FILE is
// the target of a bind mount of deploy/evaluator/criteria.yaml.
func TestComposeCriteriaFileMounted(t *testing.T) {
	project := loadCompose(t)
	svc := project.Services["evaluator"]
	path := deref(svc.Environment["CRITERIA_FILE"])
	want := repoPath(t, "deploy", "evaluator", "criteria.yaml")
	for _, v := range svc.Volumes {
		if v.Target == path {
			if v.Source != want {
				t.Errorf("CRITERIA_FILE %s is mounted from %s, want %s", path, v.Source, rel(t, want))
			}
			return
		}
	}
	t.Errorf("CRITERIA_FILE %q is not a mount target of the evaluator", path)
}

// TestComposeTokensFileMounted checks that the gateway's GATEWAY_TOKENS_FILE
// is deploy/gateway/tokens.yaml, mounted with its folder so that a save by
// rename reaches the container.
func TestComposeTokensFileMounted(t *testing.T) {
	project := loadCompose(t)
	svc := project.Services["gateway"]
	path := deref(svc.Environment["GATEWAY_TOKENS_FILE"])
	for _, v := range svc.Volumes {
		if v.Target == filepath.Dir(path) {
			if want := repoPath(t, "deploy", "gateway"); v.Source != want {
				t.Errorf("the folder of GATEWAY_TOKENS_FILE is mounted from %s, want %s", v.Source, rel(t, want))
			}
			if _, err := os.Stat(filepath.Join(v.Source, filepath.Base(path))); err != nil {
				t.Errorf("GATEWAY_TOKENS_FILE: %v", err)
			}
			return
		}
	}
	t.Errorf("the folder of GATEWAY_TOKENS_FILE %q is not a mount target of the gateway", path)
}

// TestComposeScrapeTargetsMatchServices checks that every Prometheus target
// host is a compose service listening on the scraped port.
func TestComposeScrapeTargetsMatchServices(t *testing.T) {
	project := loadCompose(t)
	for _, target := range scrapeTargets(t) {
		host, port, ok := strings.Cut(target, ":")
		if !ok {
			t.Errorf("scrape target %q has no port", target)
			continue
		}
		svc, ok := project.Services[host]
		if !ok {
			t.Errorf("scrape target %q is not a compose service", target)
			continue
		}
		if addr := deref(svc.Environment["HTTP_ADDR"]); !strings.HasSuffix(addr, ":"+port) {
			t.Errorf("scrape target %q: service listens on %q", target, addr)
		}
	}
}

// serviceEnvironment is the environment compose gives a service, after
// interpolation of the defaults written in docker-compose.yml (variables
// without a value are left out), in the form the services' getenv reads.
func serviceEnvironment(svc types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range svc.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

func deref(s *string) string {
	if s == nil {
		return "<unset>"
	}
	return *s
}
