package deploytest

import (
	"encoding/json"
	"os"
	"path/filepath"
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
	ID         int       `json:"id"`
	Type       string    `json:"type"`
	Title      string    `json:"title"`
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
	file       string
	UID        string    `json:"uid"`
	Title      string    `json:"title"`
	Panels     []*gPanel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
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
			if p.Type != "row" && p.Type != "text" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no targets", d.file, p.Title)
			}
		}
	}
}

func TestDashboardDatasourcesAreProvisioned(t *testing.T) {
	provisioned := provisionedDatasources(t)
	check := func(where string, ref *dsRef) {
		if ref == nil {
			return
		}
		if ref.Name != "" {
			t.Errorf("%s: data source given by name %q; use {type, uid}", where, ref.Name)
			return
		}
		typ, ok := provisioned[ref.UID]
		if !ok {
			t.Errorf("%s: data source uid %q is not provisioned", where, ref.UID)
			return
		}
		if ref.Type != "" && ref.Type != typ {
			t.Errorf("%s: data source %q has type %q, provisioned as %q", where, ref.UID, ref.Type, typ)
		}
	}
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			where := d.file + ": panel " + p.Title
			if p.Type != "row" && p.Type != "text" && p.Datasource == nil {
				t.Errorf("%s: no data source", where)
			}
			check(where, p.Datasource)
			for _, tg := range p.Targets {
				check(where+" target "+tg.RefID, tg.Datasource)
				if tg.RawSQL != "" && !tg.isClickHouse(p) {
					t.Errorf("%s target %s: SQL on a non-ClickHouse data source", where, tg.RefID)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" {
				check(d.file+": variable "+v.Name, v.Datasource)
			}
		}
	}
}
