package storage_test

import (
	"context"
	"encoding/xml"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
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
		{storage.Query{SQL: "ALTER TABLE t ADD COLUMN a UInt8"}, []storage.Access{{"t", "ALTER ADD COLUMN"}}},
		{storage.Query{SQL: "ALTER TABLE t MODIFY COLUMN a UInt16"}, []storage.Access{{"t", "ALTER"}}},
		{storage.Query{SQL: "OPTIMIZE TABLE t FINAL"}, []storage.Access{{"t", "OPTIMIZE"}}},
		{storage.KeptPartitions(), nil}, // system.parts
		{storage.RenameTable("identities_202611_fill_1", "identities_202611"), []storage.Access{{"identities_202611_fill_1", "SELECT"},
			{"identities_202611_fill_1", "DROP TABLE"}, {"identities_202611", "CREATE TABLE"}, {"identities_202611", "INSERT"}}},
		{storage.Query{SQL: "CREATE MATERIALIZED VIEW IF NOT EXISTS v TO t AS SELECT a FROM s"},
			[]storage.Access{{"v", "CREATE VIEW"}, {"t", "SELECT"}, {"t", "INSERT"}, {"s", "SELECT"}}},
	} {
		if got := storage.AccessesOf(c.q); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%.60s: %v, want %v", c.q.SQL, got, c.want)
		}
	}
	access := map[string][]string{"a": {"SELECT"}, "tmp_*": {"DROP TABLE"}, "*": {"OPTIMIZE"}}
	for x, want := range map[storage.Access]bool{
		{"a", "SELECT"}: true, {"a", "INSERT"}: false, {"tmp_1", "DROP TABLE"}: true, {"tmp_1", "SELECT"}: false, {"b", "SELECT"}: false,
		{"b", "OPTIMIZE"}: true,
	} {
		if storage.Allows(access, x) != want {
			t.Errorf("Allows %v: %v", x, !want)
		}
	}
}

// TestServicesGranted: the ClickHouse users of the ingest and the
// evaluator in the shipped deployment hold exactly IngestAccess and
// EvaluatorAccess.
func TestServicesGranted(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "clickhouse", "users.d", "services.xml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type user struct {
		Grants []string `xml:"grants>query"`
	}
	var f struct {
		Users struct {
			Ingest    user `xml:"ingest"`
			Evaluator user `xml:"evaluator"`
		} `xml:"users"`
	}
	if err := xml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	re := regexp.MustCompile(`^GRANT\s+(.+?)\s+ON\s+smartcity\.(\S+)$`)
	for _, u := range []struct {
		name   string
		grants []string
		access map[string][]string
	}{{"ingest", f.Users.Ingest.Grants, storage.IngestAccess}, {"evaluator", f.Users.Evaluator.Grants, storage.EvaluatorAccess}} {
		granted := map[string][]string{}
		for _, q := range u.grants {
			m := re.FindStringSubmatch(strings.TrimSpace(q))
			if m == nil {
				t.Errorf("%s: %s: grant %q is not GRANT <privileges> ON smartcity.<table>", path, u.name, q)
				continue
			}
			for p := range strings.SplitSeq(m[1], ",") {
				granted[m[2]] = append(granted[m[2]], strings.TrimSpace(p))
			}
		}
		for _, table := range slices.Sorted(maps.Keys(u.access)) {
			want := slices.Sorted(slices.Values(u.access[table]))
			if got := slices.Sorted(slices.Values(granted[table])); !slices.Equal(got, want) {
				t.Errorf("%s: %s holds %v on smartcity.%s; it needs %v", path, u.name, got, table, want)
			}
			delete(granted, table)
		}
		for table, p := range granted {
			t.Errorf("%s: %s holds %v on smartcity.%s, which it does not need", path, u.name, p, table)
		}
	}
}

// TestIngestMayMigrate: every statement of the migrations, applied to an
// empty database and again, is one the ingest's user may run.
func TestIngestMayMigrate(t *testing.T) {
	db := storagetest.Audited(t, storage.NewConn(testenv.ClickHouse(t)), storage.IngestAccess)
	for range 2 {
		if err := storage.Migrate(context.Background(), db); err != nil {
			t.Fatal(err)
		}
	}
}
