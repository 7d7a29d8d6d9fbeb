package storage_test

import (
	"encoding/xml"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/assoliment/assoliment/services/storage"
)

func TestAccessesOf(t *testing.T) {
	ext := &storage.External{Name: "wanted_series"}
	for _, c := range []struct {
		q    storage.Query
		want []storage.Access
	}{
		{storage.Query{SQL: "SELECT a FROM measurement_days WHERE series IN (SELECT series FROM wanted_series) UNION ALL SELECT b FROM (SELECT 1) JOIN x USING a",
			External: []*storage.External{ext}},
			[]storage.Access{{"measurement_days", "SELECT"}, {"x", "SELECT"}}},
		{storage.Query{SQL: "SELECT joinGet('sla_targets_1_2', 'from_key', series) FROM measurements FINAL"},
			[]storage.Access{{"measurements", "SELECT"}, {"sla_targets_1_2", "SELECT"}}},
		{storage.Query{SQL: "INSERT INTO t (a) SELECT a FROM u"}, []storage.Access{{"t", "INSERT"}, {"u", "SELECT"}}},
		{storage.Query{SQL: "CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = Memory"}, []storage.Access{{"t", "CREATE TABLE"}}},
		{storage.Query{SQL: "DROP TABLE IF EXISTS t"}, []storage.Access{{"t", "DROP TABLE"}}},
		{storage.DropKeptPartition(20787), []storage.Access{{storage.WholeDayCounts, "ALTER DELETE"}}},
		{storage.Query{SQL: "ALTER TABLE t ADD COLUMN a UInt8"}, []storage.Access{{"t", "ALTER"}}},
		{storage.Query{SQL: "OPTIMIZE TABLE t FINAL"}, []storage.Access{{"t", "OPTIMIZE"}}},
		{storage.KeptPartitions(), nil}, // system.parts
	} {
		if got := storage.AccessesOf(c.q); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%.60s: %v, want %v", c.q.SQL, got, c.want)
		}
	}
	access := map[string][]string{"a": {"SELECT"}, "tmp_*": {"DROP TABLE"}}
	for x, want := range map[storage.Access]bool{
		{"a", "SELECT"}: true, {"a", "INSERT"}: false, {"tmp_1", "DROP TABLE"}: true, {"tmp_1", "SELECT"}: false, {"b", "SELECT"}: false,
	} {
		if storage.Allows(access, x) != want {
			t.Errorf("Allows %v: %v", x, !want)
		}
	}
}

// TestEvaluatorGranted: the evaluator's ClickHouse user of the shipped
// deployment holds exactly EvaluatorAccess.
func TestEvaluatorGranted(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "clickhouse", "users.d", "services.xml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Users struct {
			Evaluator struct {
				Grants []string `xml:"grants>query"`
			} `xml:"evaluator"`
		} `xml:"users"`
	}
	if err := xml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	re := regexp.MustCompile(`^GRANT\s+(.+?)\s+ON\s+smartcity\.(\S+)$`)
	granted := map[string][]string{}
	for _, q := range f.Users.Evaluator.Grants {
		m := re.FindStringSubmatch(strings.TrimSpace(q))
		if m == nil {
			t.Errorf("%s: grant %q is not GRANT <privileges> ON smartcity.<table>", path, q)
			continue
		}
		for p := range strings.SplitSeq(m[1], ",") {
			granted[m[2]] = append(granted[m[2]], strings.TrimSpace(p))
		}
	}
	for _, table := range slices.Sorted(maps.Keys(storage.EvaluatorAccess)) {
		want := slices.Sorted(slices.Values(storage.EvaluatorAccess[table]))
		if got := slices.Sorted(slices.Values(granted[table])); !slices.Equal(got, want) {
			t.Errorf("%s: the evaluator holds %v on smartcity.%s; it needs %v", path, got, table, want)
		}
		delete(granted, table)
	}
	for table, p := range granted {
		t.Errorf("%s: the evaluator holds %v on smartcity.%s, which it does not need", path, p, table)
	}
}
