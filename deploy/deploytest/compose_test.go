package deploytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

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
	"gateway-1": {"NATS_URL", "HTTP_ADDR", "GATEWAY_TOKENS_FILE"},
	"gateway-2": {"NATS_URL", "HTTP_ADDR", "GATEWAY_TOKENS_FILE"},
	"simulator": {"NATS_URL", "SIMULATOR_SEED"},
}

// serviceHTTPAddr is the listen address each HTTP service must use inside
// its container, so that Prometheus and health checks can reach it.
var serviceHTTPAddr = map[string]string{
	"ingest-1":  "0.0.0.0:8081",
	"ingest-2":  "0.0.0.0:8081",
	"evaluator": "0.0.0.0:8080",
	"gateway":   "0.0.0.0:8082",
	"gateway-1": "0.0.0.0:8082",
	"gateway-2": "0.0.0.0:8082",
}

// composeSecrets are the variables the compose files require (each
// `${X:?…}`), with the values the tests give them. Files named by a
// variable are created by composeEnv.
var composeSecrets = map[string]string{
	"CLICKHOUSE_ADMIN_PASSWORD":     "admin-secret",
	"CLICKHOUSE_INGEST_PASSWORD":    "ingest-secret",
	"CLICKHOUSE_EVALUATOR_PASSWORD": "evaluator-secret",
	"CLICKHOUSE_GRAFANA_PASSWORD":   "grafana-secret",
	"GRAFANA_ADMIN_PASSWORD":        "grafana-admin-secret",
	// Files and folders, set by composeEnv.
	"ALERTMANAGER_SMTP_PASSWORD_FILE": "",
	"ASSOLIMENT_SECRETS":              "",
}

// secureFiles are the files the secure variant reads from ASSOLIMENT_SECRETS.
var secureFiles = []string{
	"tls/server-cert.pem", "tls/server-key.pem", "tls/ca.pem",
	"seeds/ingest.nk", "seeds/evaluator.nk", "seeds/gateway.nk", "seeds/operator.nk",
}

// composeEnv returns the environment of the compose tests: every required
// secret set, files and folders created in a temporary directory.
func composeEnv(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{}
	for k, v := range composeSecrets {
		env[k] = v
	}
	env["ALERTMANAGER_SMTP_PASSWORD_FILE"] = filepath.Join(dir, "smtp-password")
	env["ASSOLIMENT_SECRETS"] = filepath.Join(dir, "secrets")
	files := append([]string{env["ALERTMANAGER_SMTP_PASSWORD_FILE"]}, secureFiles...)
	for i, f := range files {
		if i > 0 {
			f = filepath.Join(env["ASSOLIMENT_SECRETS"], f)
		}
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		content := []byte("test\n")
		if strings.HasSuffix(f, ".pem") {
			content = testCertificate(t)
		}
		if err := os.WriteFile(f, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

// testCertificate is a self-signed certificate in PEM, for the files the
// services read as certificates.
func testCertificate(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// composeVariants are the ways the platform is started: the compose files
// and profiles of each, and the services each runs (the simulator besides
// with the profile demo).
var composeVariants = []struct {
	name     string
	files    []string
	profiles []string
	services []string
}{
	{"plain", []string{"docker-compose.yml"}, nil, singleHost},
	{"demo", []string{"docker-compose.yml"}, []string{"demo"}, singleHost},
	{"secure", []string{"docker-compose.yml", "docker-compose.secure.yml"}, []string{"demo"}, singleHost},
	{"ha", []string{"docker-compose.ha.yml"}, nil, highAvailability},
}

var (
	singleHost       = []string{"nats", "clickhouse", "ingest-1", "ingest-2", "evaluator", "gateway", "prometheus", "alertmanager", "grafana"}
	highAvailability = []string{"nats-1", "nats-2", "nats-3", "keeper-1", "keeper-2", "keeper-3", "clickhouse-1", "clickhouse-2",
		"ingest-1", "ingest-2", "evaluator", "gateway-1", "gateway-2", "prometheus", "alertmanager", "grafana"}
)

// loadComposeFiles loads compose files as docker compose would, with the
// environment env only (no host environment, no .env file).
func loadComposeFiles(t *testing.T, env map[string]string, profiles []string, files ...string) (*types.Project, error) {
	t.Helper()
	root := repoRoot(t)
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(root, f))
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(root),
		cli.WithEnv(envList(env)),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	return cli.ProjectFromOptions(context.Background(), opts)
}

func envList(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// loadCompose loads docker-compose.yml with the demo profile and every
// required secret set.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	project, err := loadComposeFiles(t, composeEnv(t), []string{"demo"}, "docker-compose.yml")
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return project
}

// forEachVariant runs check on every compose variant.
func forEachVariant(t *testing.T, check func(t *testing.T, project *types.Project)) {
	for _, v := range composeVariants {
		t.Run(v.name, func(t *testing.T) {
			project, err := loadComposeFiles(t, composeEnv(t), v.profiles, v.files...)
			if err != nil {
				t.Fatalf("%s does not load: %v", strings.Join(v.files, " + "), err)
			}
			check(t, project)
		})
	}
}

func TestComposeParses(t *testing.T) {
	for _, v := range composeVariants {
		t.Run(v.name, func(t *testing.T) {
			project, err := loadComposeFiles(t, composeEnv(t), v.profiles, v.files...)
			if err != nil {
				t.Fatalf("%s does not load: %v", strings.Join(v.files, " + "), err)
			}
			want := v.services
			if slices.Contains(v.profiles, "demo") {
				want = append(slices.Clone(want), "simulator")
			}
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
		})
	}
}

// TestComposeDemoIsAProfile checks that demo data is published only when
// asked for: the simulator belongs to the profile demo alone.
func TestComposeDemoIsAProfile(t *testing.T) {
	project, err := loadComposeFiles(t, composeEnv(t), nil, "docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := project.Services["simulator"]; ok {
		t.Error("the simulator starts without --profile demo")
	}
	sim, ok := project.DisabledServices["simulator"]
	if !ok || !slices.Equal(sim.Profiles, []string{"demo"}) {
		t.Errorf("the simulator's profiles are %v, want [demo]", sim.Profiles)
	}
}

// TestComposeRequiredSecrets checks that every secret is required: with any
// one of them unset, the compose files refuse to load and name it, instead
// of falling back to a default.
func TestComposeRequiredSecrets(t *testing.T) {
	for name := range composeSecrets {
		env := composeEnv(t)
		delete(env, name)
		for _, files := range [][]string{{"docker-compose.yml"}, {"docker-compose.ha.yml"}} {
			if name == "ASSOLIMENT_SECRETS" {
				if files[0] != "docker-compose.yml" {
					continue
				}
				files = append(files, "docker-compose.secure.yml")
			}
			_, err := loadComposeFiles(t, env, []string{"demo"}, files...)
			if err == nil {
				t.Errorf("%s unset: %s loads", name, strings.Join(files, " + "))
			} else if !strings.Contains(err.Error(), name) {
				t.Errorf("%s unset: the error does not name it: %v", name, err)
			}
		}
	}
	// No secret has a default in the files themselves.
	defaultRE := regexp.MustCompile(`\$\{(\w*(PASSWORD|SECRET|TOKEN|KEY)\w*):?-`)
	for _, f := range []string{"docker-compose.yml", "docker-compose.secure.yml", "docker-compose.ha.yml"} {
		b, err := os.ReadFile(repoPath(t, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range defaultRE.FindAllStringSubmatch(string(b), -1) {
			t.Errorf("%s: secret %s has a default value; require it with ${%s:?…}", f, m[1], m[1])
		}
	}
}

func TestComposeBindMountsExist(t *testing.T) {
	forEachVariant(t, checkBindMounts)
}

// checkBindMounts checks that every bind mount is read-only and exists, in
// the repository or (secrets) in ASSOLIMENT_SECRETS.
func checkBindMounts(t *testing.T, project *types.Project) {
	root := repoRoot(t)
	secrets := project.Environment["ASSOLIMENT_SECRETS"]
	for name, svc := range project.Services {
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			inSecrets := secrets != "" && strings.HasPrefix(v.Source, secrets+string(filepath.Separator))
			if !inSecrets && !strings.HasPrefix(v.Source, root+string(filepath.Separator)) {
				t.Errorf("%s: bind mount %s is neither in the repository nor in ASSOLIMENT_SECRETS", name, v.Source)
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
	forEachVariant(t, func(t *testing.T, project *types.Project) {
		checkNamedVolumes(t, project)
	})
}

func checkNamedVolumes(t *testing.T, project *types.Project) {
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
	forEachVariant(t, func(t *testing.T, project *types.Project) {
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
	})
}

func TestComposePublishedPortsUnique(t *testing.T) {
	forEachVariant(t, func(t *testing.T, project *types.Project) {
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
	})
}

func TestComposeHealthchecksAndRestart(t *testing.T) {
	forEachVariant(t, func(t *testing.T, project *types.Project) {
		for name, svc := range project.Services {
			hc := svc.HealthCheck
			if hc == nil || hc.Disable || len(hc.Test) == 0 || hc.Test[0] == "NONE" {
				t.Errorf("%s: no health check", name)
			}
			if svc.Restart != types.RestartPolicyUnlessStopped {
				t.Errorf("%s: restart %q, want %q", name, svc.Restart, types.RestartPolicyUnlessStopped)
			}
		}
	})
}

// TestComposeSecretsExist checks that every secret a service uses is
// declared and read from an existing file.
func TestComposeSecretsExist(t *testing.T) {
	forEachVariant(t, func(t *testing.T, project *types.Project) {
		for name, svc := range project.Services {
			for _, s := range svc.Secrets {
				decl, ok := project.Secrets[s.Source]
				if !ok {
					t.Errorf("%s: secret %q is not declared", name, s.Source)
					continue
				}
				if _, err := os.Stat(decl.File); err != nil {
					t.Errorf("%s: secret %q: %v", name, s.Source, err)
				}
			}
		}
	})
}

func TestComposeServiceEnvironment(t *testing.T) {
	forEachVariant(t, func(t *testing.T, project *types.Project) {
		for name, keys := range serviceEnv {
			svc, ok := project.Services[name]
			if !ok {
				// Which services each variant runs is TestComposeParses's.
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
	})
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
