package deploytest

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const clickHouseType = "grafana-clickhouse-datasource"

// dsRef is a data source reference; Grafana also accepts a bare name string,
// which these dashboards must not use.
type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
	Name string `json:"-"`
}

func (d *dsRef) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		d.Name = s
		return nil
	}
	type plain dsRef
	return json.Unmarshal(b, (*plain)(d))
}

type target struct {
	RefID      string `json:"refId"`
	Expr       string `json:"expr"`
	RawSQL     string `json:"rawSql"`
	Datasource *dsRef `json:"datasource"`
}

// isClickHouse reports whether the target is SQL for the ClickHouse data source.
func (tg target) isClickHouse(p *gPanel) bool {
	ds := tg.Datasource
	if ds == nil {
		ds = p.Datasource
	}
	return (ds != nil && ds.Type == clickHouseType) || tg.RawSQL != ""
}

type gPanel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
		Overrides []struct {
			Properties []struct {
				ID string `json:"id"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Datasource *dsRef    `json:"datasource"`
	Targets    []target  `json:"targets"`
	Panels     []*gPanel `json:"panels"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
}

type variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Datasource *dsRef `json:"datasource"`
	Query      any    `json:"query"`
	Current    struct {
		Value any `json:"value"` // a string, or a list for multi-value variables
	} `json:"current"`
}

// queryString returns the query of a variable, stored either as a string or
// as an object with a "query" field.
func (v variable) queryString() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return ""
}

type dashboard struct {
	file   string
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	Requires []struct {
		Type    string `json:"type"`
		ID      string `json:"id"`
		Version string `json:"version"`
	} `json:"__requires"`
	UID        string    `json:"uid"`
	Title      string    `json:"title"`
	Panels     []*gPanel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Annotations struct {
		List []struct {
			Name       string `json:"name"`
			Datasource *dsRef `json:"datasource"`
			Target     struct {
				RawSQL string `json:"rawSql"`
			} `json:"target"`
		} `json:"list"`
	} `json:"annotations"`
}

// allPanels flattens rows into their panels.
func (d *dashboard) allPanels() []*gPanel {
	var out []*gPanel
	var walk func([]*gPanel)
	walk = func(ps []*gPanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func loadDashboards(t *testing.T) []*dashboard {
	t.Helper()
	var out []*dashboard
	for _, f := range globRepo(t, "deploy/grafana/dashboards/*.json") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(b) {
			t.Errorf("%s: invalid JSON", rel(t, f))
			continue
		}
		d := &dashboard{file: filepath.Base(f)}
		if err := json.Unmarshal(b, d); err != nil {
			t.Errorf("%s: %v", rel(t, f), err)
			continue
		}
		out = append(out, d)
	}
	return out
}

// provisionedDatasources returns the uid → type of every provisioned data source.
func provisionedDatasources(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range globRepo(t, "deploy/grafana/provisioning/datasources/*.yml") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Datasources []struct {
				UID  string `yaml:"uid"`
				Type string `yaml:"type"`
			} `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", rel(t, f), err)
		}
		for _, ds := range doc.Datasources {
			if ds.UID == "" {
				t.Errorf("%s: data source of type %s has no uid", rel(t, f), ds.Type)
			}
			out[ds.UID] = ds.Type
		}
	}
	return out
}

func TestDatasourcesProvisioned(t *testing.T) {
	ds := provisionedDatasources(t)
	if ds["prometheus"] != "prometheus" {
		t.Errorf("no Prometheus data source with uid prometheus")
	}
	if ds["clickhouse"] != clickHouseType {
		t.Errorf("no %s data source with uid clickhouse", clickHouseType)
	}
}

func TestDashboardProviderPath(t *testing.T) {
	b, err := os.ReadFile(repoPath(t, "deploy", "grafana", "provisioning", "dashboards", "dashboards.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Providers) == 0 {
		t.Fatal("no dashboard provider")
	}
	// The provider reads the directory compose mounts the dashboards on.
	project := loadCompose(t)
	want := repoPath(t, "deploy", "grafana", "dashboards")
	for _, p := range doc.Providers {
		found := false
		for _, v := range project.Services["grafana"].Volumes {
			if v.Target == p.Options.Path && v.Source == want {
				found = true
			}
		}
		if !found {
			t.Errorf("dashboard provider path %s is not where compose mounts deploy/grafana/dashboards", p.Options.Path)
		}
	}
}

func TestDashboardsWellFormed(t *testing.T) {
	uids := map[string]string{}
	dashboards := loadDashboards(t)
	if len(dashboards) < 4 {
		t.Errorf("found %d dashboards, want at least 4", len(dashboards))
	}
	for _, d := range dashboards {
		if d.UID == "" || d.Title == "" {
			t.Errorf("%s: uid %q and title %q must both be set", d.file, d.UID, d.Title)
		}
		if len(d.UID) > 40 {
			t.Errorf("%s: uid %q is longer than Grafana's 40 characters", d.file, d.UID)
		}
		if other, ok := uids[d.UID]; ok {
			t.Errorf("%s: uid %q already used by %s", d.file, d.UID, other)
		}
		uids[d.UID] = d.file
		ids := map[int]bool{}
		for _, p := range d.allPanels() {
			if p.ID == 0 {
				t.Errorf("%s: panel %q has no id", d.file, p.Title)
			}
			if ids[p.ID] {
				t.Errorf("%s: panel id %d is used twice", d.file, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos == nil {
				t.Errorf("%s: panel %q has no gridPos", d.file, p.Title)
			} else if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("%s: panel %q gridPos %+v is outside the 24-column grid", d.file, p.Title, *g)
			}
			if p.Type != "row" && p.Type != "text" && p.Type != "alertlist" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no targets", d.file, p.Title)
			}
		}
	}
}

// TestDashboardsImportable checks that each dashboard imports into any
// Grafana (10.4 or later): every data source is chosen on import (an entry of
// __inputs) and reached through a data-source variable whose default is that
// choice, so that no panel names a uid of this installation.
func TestDashboardsImportable(t *testing.T) {
	provisioned := provisionedDatasources(t)
	provisionedTypes := map[string]bool{}
	for _, typ := range provisioned {
		provisionedTypes[typ] = true
	}
	for _, d := range loadDashboards(t) {
		raw := rawDashboard(t, d.file)
		inputs := map[string]string{} // ${DS_…} → plugin id
		for _, in := range d.Inputs {
			if in.Type != "datasource" || in.PluginID == "" {
				t.Errorf("%s: input %s is not a data source with a plugin id", d.file, in.Name)
				continue
			}
			inputs["${"+in.Name+"}"] = in.PluginID
			if !provisionedTypes[in.PluginID] {
				t.Errorf("%s: input %s needs %s, which compose does not provision", d.file, in.Name, in.PluginID)
			}
		}
		dsVars := map[string]string{} // ${name} → plugin id
		for _, v := range d.Templating.List {
			if v.Type != "datasource" {
				continue
			}
			plugin, _ := v.Query.(string)
			current, _ := v.Current.Value.(string)
			if got := inputs[current]; got != plugin {
				t.Errorf("%s: data-source variable %s (%s) defaults to %q, which is no input of that type", d.file, v.Name, plugin, v.Current.Value)
			}
			dsVars["${"+v.Name+"}"] = plugin
		}
		used := map[string]bool{}
		walkDatasources(raw, "", func(where string, ref any) {
			m, ok := ref.(map[string]any)
			if !ok {
				t.Errorf("%s: %s: data source %v given by name; use {type, uid}", d.file, where, ref)
				return
			}
			typ, _ := m["type"].(string)
			uid, _ := m["uid"].(string)
			if typ == "grafana" || typ == "datasource" {
				return // Grafana's own annotations and mixed queries
			}
			if dsVars[uid] != typ {
				t.Errorf("%s: %s: data source %s/%s is not a data-source variable of type %s", d.file, where, typ, uid, typ)
			}
			used[typ] = true
		})
		for plugin := range used {
			if !slices.Contains(slices.Collect(maps.Values(inputs)), plugin) {
				t.Errorf("%s: uses %s but has no input for it", d.file, plugin)
			}
		}
		grafana := ""
		for _, r := range d.Requires {
			if r.Type == "grafana" {
				grafana = r.Version
			}
		}
		if grafana != "10.4.0" {
			t.Errorf("%s: __requires grafana %q, want 10.4.0 (the oldest Grafana these dashboards are for)", d.file, grafana)
		}
		types := map[string]bool{}
		for _, r := range d.Requires {
			types[r.ID] = true
		}
		for _, p := range d.allPanels() {
			if p.Type != "row" && !types[p.Type] {
				t.Errorf("%s: panel type %s is not in __requires", d.file, p.Type)
			}
		}
	}
}

// walkDatasources calls f with every "datasource" value in a dashboard's
// JSON, with a description of where it is.
func walkDatasources(v any, where string, f func(where string, ref any)) {
	switch x := v.(type) {
	case map[string]any:
		if title, ok := x["title"].(string); ok {
			where = "panel " + title
		} else if name, ok := x["name"].(string); ok && where == "" {
			where = name
		}
		for k, c := range x {
			if k == "datasource" {
				f(where, c)
				continue
			}
			walkDatasources(c, where, f)
		}
	case []any:
		for _, c := range x {
			walkDatasources(c, where, f)
		}
	}
}

// rawDashboard is a dashboard's JSON as generic values.
func rawDashboard(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(repoPath(t, "deploy", "grafana", "dashboards", file))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPanelsDescribedWithUnits checks that every panel says what it shows
// and in which unit (on the whole panel or per column).
func TestPanelsDescribedWithUnits(t *testing.T) {
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			if p.Type == "row" {
				continue
			}
			if strings.TrimSpace(p.Description) == "" {
				t.Errorf("%s: panel %q has no description", d.file, p.Title)
			}
			if p.Type == "text" || p.Type == "alertlist" {
				continue
			}
			units := p.FieldConfig.Defaults.Unit != ""
			for _, o := range p.FieldConfig.Overrides {
				for _, pr := range o.Properties {
					units = units || pr.ID == "unit"
				}
			}
			if !units {
				t.Errorf("%s: panel %q has no unit", d.file, p.Title)
			}
		}
	}
}

// linkRE matches an internal dashboard link: /d/<uid>/… with its query.
var linkRE = regexp.MustCompile(`^/d/([\w-]+)/?[^?]*(?:\?(.*))?$`)

// linkVarRE matches the variables a link's template uses.
var linkVarRE = regexp.MustCompile(`\$\{([\w.]+)(?::[\w]+)?\}`)

// TestDashboardLinksResolve checks every link of every dashboard (top bar,
// panel links and data links): it points to a dashboard of this folder,
// every var-<name> it sets is a variable of that dashboard, and every
// variable it reads is one of its own dashboard's or one of Grafana's.
func TestDashboardLinksResolve(t *testing.T) {
	dashboards := loadDashboards(t)
	vars := map[string]map[string]bool{}
	for _, d := range dashboards {
		vars[d.UID] = map[string]bool{}
		for _, v := range d.Templating.List {
			vars[d.UID][v.Name] = true
		}
	}
	builtin := []string{"__field.", "__value.", "__data.fields.", "__url_time_range", "__series.", "__from", "__to"}
	drill := map[string]map[string]bool{} // dashboard uid → dashboards it links to
	for _, d := range dashboards {
		drill[d.UID] = map[string]bool{}
		n := 0
		walkLinks(rawDashboard(t, d.file), func(title, u string) {
			n++
			where := fmt.Sprintf("%s: link %q", d.file, title)
			for _, m := range linkVarRE.FindAllStringSubmatch(u, -1) {
				name := m[1]
				if !vars[d.UID][name] && !slices.ContainsFunc(builtin, func(b string) bool { return strings.HasPrefix(name, b) }) {
					t.Errorf("%s reads ${%s}, which is no variable of the dashboard", where, name)
				}
			}
			m := linkRE.FindStringSubmatch(u)
			if m == nil {
				t.Errorf("%s: %q is not a link to a dashboard (/d/<uid>/…)", where, u)
				return
			}
			target, ok := vars[m[1]]
			if !ok {
				t.Errorf("%s: dashboard %s does not exist", where, m[1])
				return
			}
			drill[d.UID][m[1]] = true
			for p := range strings.SplitSeq(m[2], "&") {
				name, ok := strings.CutPrefix(strings.SplitN(p, "=", 2)[0], "var-")
				if ok && !target[name] {
					t.Errorf("%s sets var-%s, which is no variable of %s", where, name, m[1])
				}
			}
		})
		t.Logf("%s: %d links", d.file, n)
	}
	// The drill-down paths operators follow.
	for _, p := range [][2]string{
		{"assoliment-maturity", "assoliment-municipality"},
		{"assoliment-municipality", "assoliment-service"},
		{"assoliment-providers", "assoliment-service"},
		{"assoliment-service", "assoliment-municipality"},
	} {
		if !drill[p[0]][p[1]] {
			t.Errorf("no link from %s to %s", p[0], p[1])
		}
	}
}

// walkLinks calls f with every link in a dashboard's JSON: entries of
// "links" lists with a url (top bar, panel links, data links in field
// defaults and overrides).
func walkLinks(v any, f func(title, url string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if k == "links" {
				if l, ok := c.([]any); ok {
					for _, e := range l {
						if m, ok := e.(map[string]any); ok {
							if u, _ := m["url"].(string); u != "" {
								title, _ := m["title"].(string)
								f(title, u)
							}
						}
					}
				}
			}
			if k == "value" && x["id"] == "links" {
				walkLinks(map[string]any{"links": c}, f)
				continue
			}
			walkLinks(c, f)
		}
	case []any:
		for _, c := range x {
			walkLinks(c, f)
		}
	}
}
