package deploytest

import (
	"encoding/xml"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// natsClients are the services that connect to NATS, with the seed each
// uses in the secure variant.
var natsClients = map[string]string{
	"ingest-1": "nats-ingest", "ingest-2": "nats-ingest", "evaluator": "nats-evaluator",
	"gateway": "nats-gateway", "simulator": "nats-operator",
}

// loadSecure loads the secure variant with the demo profile.
func loadSecure(t *testing.T) *types.Project {
	t.Helper()
	project, err := loadComposeFiles(t, composeEnv(t), []string{"demo"}, "docker-compose.yml", "docker-compose.secure.yml")
	if err != nil {
		t.Fatalf("docker-compose.yml + docker-compose.secure.yml do not load: %v", err)
	}
	return project
}

// mountSource returns the host path mounted at target in svc (a file, or a
// file under a mounted folder), or "".
func mountSource(svc types.ServiceConfig, target string) string {
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if v.Target == target {
			return v.Source
		}
		if rest, ok := strings.CutPrefix(target, v.Target+"/"); ok {
			return filepath.Join(v.Source, rest)
		}
	}
	return ""
}

// secretTarget is where a service's secret is mounted.
func secretTarget(s types.ServiceSecretConfig) string {
	if s.Target == "" {
		return "/run/secrets/" + s.Source
	}
	if path.IsAbs(s.Target) {
		return s.Target
	}
	return "/run/secrets/" + s.Target
}

// TestComposeSecureNATS checks the secure variant: the broker runs the
// configuration of deploy/nats/secure with its accounts and the TLS files
// it names, and every client dials TLS with its own seed and the
// authority of the broker's certificate.
func TestComposeSecureNATS(t *testing.T) {
	project := loadSecure(t)
	nats := project.Services["nats"]
	conf := ""
	for i, a := range nats.Command {
		if a == "--config" && i+1 < len(nats.Command) {
			conf = nats.Command[i+1]
		}
	}
	if want := repoPath(t, "deploy", "nats", "secure", "nats-server.conf"); mountSource(nats, conf) != want {
		t.Fatalf("nats: --config %q is mounted from %q, want %s", conf, mountSource(nats, conf), rel(t, want))
	}
	if slices.ContainsFunc(nats.Command, func(a string) bool { return a == "--addr" || a == "-a" }) {
		t.Error("nats: the command overrides the secure configuration's listen address")
	}
	b, err := os.ReadFile(repoPath(t, "deploy", "nats", "secure", "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// include ./accounts.conf: beside the configuration.
	for _, m := range regexp.MustCompile(`(?m)^include\s+(\S+)`).FindAllStringSubmatch(string(b), -1) {
		inc := path.Join(path.Dir(conf), m[1])
		if src := mountSource(nats, inc); src != repoPath(t, "deploy", "nats", "secure", path.Base(m[1])) {
			t.Errorf("nats: included %s is mounted from %q", inc, src)
		}
	}
	files := regexp.MustCompile(`(?m)^\s*(cert_file|key_file|ca_file):\s*"([^"]+)"`).FindAllStringSubmatch(string(b), -1)
	if len(files) == 0 {
		t.Fatal("the secure configuration names no TLS files")
	}
	for _, m := range files {
		src := mountSource(nats, m[2])
		if src == "" {
			t.Errorf("nats: %s %s is not mounted", m[1], m[2])
		} else if _, err := os.Stat(src); err != nil {
			t.Errorf("nats: %s %s: %v", m[1], m[2], err)
		}
	}
	for name, seed := range natsClients {
		svc, ok := project.Services[name]
		if !ok {
			t.Errorf("service %s is missing", name)
			continue
		}
		env := serviceEnvironment(svc)
		if !strings.HasPrefix(env["NATS_URL"], "tls://nats:") {
			t.Errorf("%s: NATS_URL %q, want tls://nats:…", name, env["NATS_URL"])
		}
		targets := map[string]string{}
		for _, s := range svc.Secrets {
			targets[secretTarget(s)] = s.Source
		}
		if got := targets[env["NATS_CREDS"]]; got != seed {
			t.Errorf("%s: NATS_CREDS %q is secret %q, want %s", name, env["NATS_CREDS"], got, seed)
		}
		if got := targets[env["NATS_TLS_CA"]]; got != "nats-ca" {
			t.Errorf("%s: NATS_TLS_CA %q is secret %q, want nats-ca", name, env["NATS_TLS_CA"], got)
		}
	}
}

// TestComposeNoLifecycleAPI checks that Prometheus' HTTP API cannot stop or
// reload it: anybody reaching the port could.
func TestComposeNoLifecycleAPI(t *testing.T) {
	forEachVariant(t, func(t *testing.T, project *types.Project) {
		for _, a := range project.Services["prometheus"].Command {
			if strings.Contains(a, "enable-lifecycle") || strings.Contains(a, "enable-admin-api") {
				t.Errorf("prometheus: %s", a)
			}
		}
	})
}

// TestComposeGrafanaPluginsPinned checks that every plugin Grafana installs
// names its version.
func TestComposeGrafanaPluginsPinned(t *testing.T) {
	env := serviceEnvironment(loadCompose(t).Services["grafana"])
	if v := env["GF_INSTALL_PLUGINS"]; v != "" {
		t.Errorf("GF_INSTALL_PLUGINS %q: use GF_PLUGINS_PREINSTALL_SYNC with id@version", v)
	}
	plugins := strings.Split(env["GF_PLUGINS_PREINSTALL_SYNC"], ",")
	if !slices.ContainsFunc(plugins, func(p string) bool { return strings.HasPrefix(p, clickHouseType+"@") }) {
		t.Errorf("GF_PLUGINS_PREINSTALL_SYNC %q does not install %s", env["GF_PLUGINS_PREINSTALL_SYNC"], clickHouseType)
	}
	for _, p := range plugins {
		if !regexp.MustCompile(`^[a-z0-9-]+@\d+\.\d+\.\d+$`).MatchString(p) {
			t.Errorf("plugin %q is not pinned to a version (id@x.y.z)", p)
		}
	}
}

// TestComposeAlertmanager checks that Prometheus sends alerts to the
// compose Alertmanager, which runs the shipped configuration and can read
// the SMTP password that configuration names.
func TestComposeAlertmanager(t *testing.T) {
	project := loadCompose(t)
	am, ok := project.Services["alertmanager"]
	if !ok {
		t.Fatal("no alertmanager service")
	}
	var conf, listen = "", ":9093"
	for _, a := range am.Command {
		if v, ok := strings.CutPrefix(a, "--config.file="); ok {
			conf = v
		}
		if v, ok := strings.CutPrefix(a, "--web.listen-address="); ok {
			listen = v
		}
	}
	shipped := repoPath(t, "deploy", "alertmanager", "alertmanager.yml")
	if mountSource(am, conf) != shipped {
		t.Errorf("alertmanager: --config.file %q is mounted from %q, want %s", conf, mountSource(am, conf), rel(t, shipped))
	}
	targets := alertmanagerTargets(t)
	if len(targets) == 0 {
		t.Fatal("prometheus.yml sends alerts nowhere (alerting.alertmanagers)")
	}
	for _, target := range targets {
		host, port, _ := strings.Cut(target, ":")
		if _, ok := project.Services[host]; !ok || !strings.HasSuffix(listen, ":"+port) {
			t.Errorf("alerting target %q is not the alertmanager service listening on %s", target, listen)
		}
	}
	secrets := map[string]bool{}
	for _, s := range am.Secrets {
		secrets[secretTarget(s)] = true
	}
	cfg := loadAlertmanagerConfig(t)
	if f := cfg.Global.SMTPAuthPasswordFile; f != "" && !secrets[f] {
		t.Errorf("alertmanager.yml reads the SMTP password from %s, which is no secret of the service", f)
	}
}

// usersFile is the part of a ClickHouse users.d file these tests read.
type usersFile struct {
	Users struct {
		Users []struct {
			XMLName  xml.Name
			Password struct {
				FromEnv string `xml:"from_env,attr"`
			} `xml:"password"`
			AccessManagement string   `xml:"access_management"`
			Grants           []string `xml:"grants>query"`
		} `xml:",any"`
	} `xml:"users"`
}

// clickHouseUser is one user of deploy/clickhouse/users.d.
type clickHouseUser struct {
	name, passwordEnv, accessManagement string
	grants                              []grant
}

// grant is one GRANT statement: privileges on database.table.
type grant struct {
	privileges []string
	db, table  string
}

var grantRE = regexp.MustCompile(`^GRANT\s+(.+?)\s+ON\s+(\w+)\.(\S+)$`)

// clickHouseUsers reads every user mounted into the clickhouse service.
func clickHouseUsers(t *testing.T, project *types.Project) map[string]clickHouseUser {
	t.Helper()
	out := map[string]clickHouseUser{}
	for _, v := range project.Services["clickhouse"].Volumes {
		if !strings.HasPrefix(v.Target, "/etc/clickhouse-server/users.d/") {
			continue
		}
		b, err := os.ReadFile(v.Source)
		if err != nil {
			t.Fatal(err)
		}
		var f usersFile
		if err := xml.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", rel(t, v.Source), err)
		}
		for _, u := range f.Users.Users {
			cu := clickHouseUser{name: u.XMLName.Local, passwordEnv: u.Password.FromEnv, accessManagement: strings.TrimSpace(u.AccessManagement)}
			for _, q := range u.Grants {
				m := grantRE.FindStringSubmatch(strings.TrimSpace(q))
				if m == nil {
					t.Errorf("%s: user %s: grant %q is not GRANT <privileges> ON <db>.<table>", rel(t, v.Source), cu.name, q)
					continue
				}
				g := grant{db: m[2], table: m[3]}
				for p := range strings.SplitSeq(m[1], ",") {
					g.privileges = append(g.privileges, strings.ToUpper(strings.TrimSpace(p)))
				}
				cu.grants = append(cu.grants, g)
			}
			out[cu.name] = cu
		}
	}
	return out
}

// schemaTables are the tables of the storage migrations.
func schemaTables(t *testing.T) map[string]bool {
	t.Helper()
	tables := map[string]bool{"schema_migrations": true}
	re := regexp.MustCompile(`CREATE TABLE IF NOT EXISTS (?:\{db\}\.)?(\w+)`)
	for _, f := range globRepo(t, "services/storage/migrations/*.sql") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			tables[m[1]] = true
		}
	}
	return tables
}

// TestClickHouseUsersLeastPrivilege checks the ClickHouse users the
// services log in as: each exists, its password is the one compose gives
// the service, nobody manages access, and each may do only what its service
// does (docs/deploy.md, "ClickHouse users").
func TestClickHouseUsersLeastPrivilege(t *testing.T) {
	project := loadCompose(t)
	users := clickHouseUsers(t, project)
	chEnv := serviceEnvironment(project.Services["clickhouse"])
	if chEnv["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"] != "0" {
		t.Errorf("clickhouse: CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT %q, want \"0\"", chEnv["CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"])
	}
	tables := schemaTables(t)
	// What each user may hold, by table ("*" for the whole database; a
	// trailing * is a table-name prefix).
	allowed := map[string]map[string][]string{
		"ingest": {
			"*":            {"CREATE DATABASE", "SELECT", "INSERT", "CREATE TABLE", "CREATE VIEW", "ALTER ADD COLUMN", "OPTIMIZE"},
			"identities_*": {"DROP TABLE"},
		},
		"evaluator": {
			"*":                 {"CREATE DATABASE"},
			"schema_migrations": {"SELECT", "CREATE TABLE"},
			"catalog":           {"SELECT"},
			"measurements":      {"SELECT"},
			"incidents":         {"SELECT"},
			"duplicates":        {"SELECT"},
			"measurement_days":  {"SELECT"},
			"incident_keys":     {"SELECT"},
			"incident_names":    {"SELECT"},
			"incident_times":    {"SELECT"},
			"incident_open":     {"SELECT"},
			"rollup_coverage":   {"SELECT"},
			"whole_day_counts":  {"SELECT", "INSERT", "ALTER DELETE"},
			"maturity_changes":  {"SELECT", "INSERT", "CREATE TABLE"},
			"sla_targets_*":     {"SELECT", "INSERT", "CREATE TABLE", "DROP TABLE"},
		},
		"grafana": {"*": {"SELECT"}},
	}
	for _, svcName := range []string{"ingest-1", "ingest-2", "evaluator"} {
		env := serviceEnvironment(project.Services[svcName])
		u, ok := users[env["CLICKHOUSE_USER"]]
		if !ok {
			t.Errorf("%s: CLICKHOUSE_USER %q is not in deploy/clickhouse/users.d", svcName, env["CLICKHOUSE_USER"])
			continue
		}
		if u.passwordEnv == "" || chEnv[u.passwordEnv] != env["CLICKHOUSE_PASSWORD"] {
			t.Errorf("%s: the password of user %s (clickhouse's %s) is not the service's CLICKHOUSE_PASSWORD", svcName, u.name, u.passwordEnv)
		}
	}
	for name, u := range users {
		if u.accessManagement != "" && u.accessManagement != "0" {
			t.Errorf("user %s may manage access", name)
		}
		want, ok := allowed[name]
		if !ok {
			t.Errorf("user %s: add it to this test with what it may do", name)
			continue
		}
		if len(u.grants) == 0 {
			t.Errorf("user %s has no grants, hence every privilege", name)
		}
		for _, g := range u.grants {
			if g.db != "smartcity" {
				t.Errorf("user %s: grant on database %s", name, g.db)
			}
			if g.table != "*" && !tables[strings.TrimSuffix(g.table, "*")] && !strings.HasSuffix(g.table, "*") {
				t.Errorf("user %s: grant on %s, which is no table of services/storage/migrations", name, g.table)
			}
			for _, p := range g.privileges {
				if !slices.Contains(want[g.table], p) {
					t.Errorf("user %s: %s on %s.%s is more than its service needs", name, p, g.db, g.table)
				}
			}
		}
	}
}
