package storage_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// TestIdentityIndexOnBothEngines runs the identity index's statements on
// ClickHouse 18.16 and on chDB (26.5) over the same events: a month's table
// filled from the event tables under a temporary name and renamed into
// place, identities added by batch, and the look-up (index hits, then the
// event tables for the hits), which finds exactly the stored identities
// whatever the index says (a hash in the index without its row, as a
// writer stopped between the two inserts leaves, is not stored). (Its file name sorts before compat_test.go, whose test
// checks that every builder ran on both engines.)
func TestIdentityIndexOnBothEngines(t *testing.T) {
	ctx := context.Background()
	ss := sides(t)
	july, august := uint32(202607), uint32(202608)
	in := func(m uint32) time.Time { return storage.MonthStart(m).Add(36 * time.Hour) }
	ev := storagetest.Event
	stored := []*contract.Event{
		ev("vic", "aigues", in(july), &contract.KPIMeasured{Service: "s", KPI: "k", Value: 1}),
		ev("vic", "aigues", in(july).Add(-time.Nanosecond), &contract.IncidentOpened{Service: "s", Incident: "i", Priority: "high", ResolutionTargetSeconds: 60}),
		ev("vic", contract.Council, in(july), &contract.ServiceRegistered{Service: "s", Name: "S", Area: "a", Delivery: contract.DeliveryOwn, Provider: contract.Council}),
		ev("vic", "aigues", storage.MonthStart(august).Add(-time.Nanosecond), &contract.KPIMeasured{Service: "s", KPI: "k", Value: 2}), // last instant of July
		ev("berga", "aigues", storage.MonthStart(august), &contract.KPIMeasured{Service: "s", KPI: "k", Value: 3}),                     // August
	}
	id := func(e *contract.Event) storage.Identity {
		return storage.Identity{Municipality: e.Municipality, Publisher: e.Publisher, ID: e.ID}
	}
	fill := storage.IdentityFillTable(july, time.Unix(0, 42))
	for _, s := range ss {
		storagetest.Store(t, s.e, stored...)
	}
	exec2(t, "CreateIdentityTable", ss, storage.CreateIdentityTable(fill))
	exec2(t, "FillIdentities", ss, storage.FillIdentities(fill, july))
	if got := same[storage.TableName](t, "IdentityTables", ss, storage.IdentityTables(), false); len(got) != 1 || got[0].Name != fill {
		t.Fatalf("index tables while filling: %+v", got)
	}
	exec2(t, "RenameTable", ss, storage.RenameTable(fill, storage.IdentityTable(july)))
	exec2(t, "CreateIdentityTable", ss, storage.CreateIdentityTable(storage.IdentityTable(august)))

	notStored := storage.Identity{Municipality: "vic", Publisher: "aigues", ID: "new"}
	halfWritten := storage.Identity{Municipality: "vic", Publisher: "aigues", ID: "in-the-index-only"}
	exec2(t, "AddIdentities", ss, storage.AddIdentities(storage.IdentityTable(august), hashesOf(halfWritten)))
	ids := []storage.Identity{notStored, halfWritten}
	for _, e := range stored {
		ids = append(ids, id(e))
	}
	months := []uint32{july, august}
	// The look-up: index hits, then the tables for the hits.
	// The month of each hit: the month of the stored row, or of the
	// identity recorded without its row (August).
	monthOf := map[storage.Identity]uint32{halfWritten: august, id(stored[4]): august}
	for _, e := range stored[:4] {
		monthOf[id(e)] = july
	}
	hitsOf := func(ids []storage.Identity, months []uint32, empty bool) []storage.Identity {
		hits := same[storage.IndexHit](t, "IndexHits", ss, storage.IndexHits(hashesOf(ids...), months), empty)
		var out []storage.Identity
		for _, id := range ids {
			for _, h := range hits {
				if h.Hash == storage.IdentityHash(id) {
					out = append(out, id)
					if h.Month != monthOf[id] {
						t.Errorf("%+v found in the index of %d, want %d", id, h.Month, monthOf[id])
					}
				}
			}
		}
		return out
	}
	stored4 := func() []storage.Identity {
		return same[storage.Identity](t, "Existing", ss, storage.Existing(hitsOf(ids, months, false), []uint32{july, august}), false)
	}
	want := []storage.Identity{id(stored[0]), id(stored[1]), id(stored[2]), id(stored[3])}
	if got := stored4(); !sameSet(got, want) {
		t.Errorf("stored among the batch, with July's table only filled: %+v, want the four July events", got)
	}
	if hits := hitsOf(ids, months, false); !sameSet(hits, append(want, halfWritten)) {
		t.Errorf("index hits %+v, want the July events and the identity recorded without its row", hits)
	}
	// August's event is stored, but not in the index: the look-up trusts
	// the index's misses, which is why every stored identity must be in it.
	// Added (as a writer does before inserting), it is found.
	exec2(t, "AddIdentities", ss, storage.AddIdentities(storage.IdentityTable(august), hashesOf(id(stored[4]))))
	if got := stored4(); !sameSet(got, append(want, id(stored[4]))) {
		t.Errorf("stored among the batch: %+v, want the five events", got)
	}
	hitsOf(ids, nil, true)
	hitsOf([]storage.Identity{notStored}, months, true)

	// Renaming onto a month that exists fails: of two processes filling the
	// same month, the second keeps the first one's table.
	other := storage.IdentityFillTable(july, time.Unix(0, 43))
	exec2(t, "CreateIdentityTable", ss, storage.CreateIdentityTable(other))
	for _, s := range ss {
		if err := s.e.Exec(ctx, storage.RenameTable(other, storage.IdentityTable(july))); err == nil {
			t.Errorf("%s: renamed a table onto an existing one", s.name)
		}
	}
	exec2(t, "DropTable", ss, storage.DropTable(other))
	names := same[storage.TableName](t, "IdentityTables", ss, storage.IdentityTables(), false)
	if len(names) != 2 {
		t.Errorf("index tables: %+v", names)
	}
}

func sameSet(a, b []storage.Identity) bool {
	key := func(x storage.Identity) string { return x.Municipality + "\x00" + x.Publisher + "\x00" + x.ID }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i] = key(a[i])
	}
	for i := range b {
		kb[i] = key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

func TestIdentityTableNames(t *testing.T) {
	start := time.Unix(0, 1_780_000_000_123_456_789)
	for _, tc := range []struct {
		name    string
		month   uint32
		filling time.Time
		ok      bool
	}{
		{storage.IdentityTable(202601), 202601, time.Time{}, true},
		{storage.IdentityFillTable(202612, start), 202612, start, true},
		{"identities_202613", 0, time.Time{}, false},
		{"identities_2026", 0, time.Time{}, false},
		{"identities_202601x", 0, time.Time{}, false},
		{"identities_202601_fill_x", 0, time.Time{}, false},
		{"identities_202601_fill_1780000000123456789", 202601, start, true}, // before the random suffix
		{"sla_targets_1", 0, time.Time{}, false},
	} {
		m, f, ok := storage.ParseIdentityTable(tc.name)
		if m != tc.month || !f.Equal(tc.filling) || ok != tc.ok {
			t.Errorf("%s: %d %v %v, want %d %v %v", tc.name, m, f, ok, tc.month, tc.filling, tc.ok)
		}
	}
	if one, other := storage.IdentityFillTable(202612, start), storage.IdentityFillTable(202612, start); one == other {
		t.Error("two fills started at the same instant share a name")
	}
	if m := storage.Month(time.Date(2026, 12, 31, 23, 30, 0, 0, time.FixedZone("", -3600))); m != 202701 {
		t.Errorf("month in UTC: %d", m)
	}
	if s := storage.MonthStart(202602); !s.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("start of 202602: %v", s)
	}
}

// TestIdentityBuilders checks the shapes of the index's statements: one
// argument per placeholder, and no identity in the SQL text.
func TestIdentityBuilders(t *testing.T) {
	hostile := storage.Identity{Municipality: "vic'; DROP TABLE measurements; --", Publisher: "p", ID: "1"}
	for name, q := range map[string]storage.Query{
		"CreateIdentityTable": storage.CreateIdentityTable(storage.IdentityTable(202601)),
		"IdentityTables":      storage.IdentityTables(),
		"FillIdentities":      storage.FillIdentities(storage.IdentityTable(202601), 202601),
		"RenameTable":         storage.RenameTable("a", "b"),
		"AddIdentities":       storage.AddIdentities(storage.IdentityTable(202601), hashesOf(hostile)),
		"IndexHits":           storage.IndexHits(hashesOf(hostile), []uint32{202601, 202602}),
	} {
		if n := placeholders(q.SQL); n != len(q.Args) {
			t.Errorf("%s: %d placeholders, %d arguments\n%s", name, n, len(q.Args), q.SQL)
		}
		if strings.Contains(q.SQL, "DROP TABLE") {
			t.Errorf("%s: an identity is in the SQL text", name)
		}
	}
}

func hashesOf(ids ...storage.Identity) []uint64 {
	out := make([]uint64, len(ids))
	for i, id := range ids {
		out[i] = storage.IdentityHash(id)
	}
	return out
}

// TestIdentityHashesAsTheServers: the ingest looks identities up by the
// hash it computes (IdentityHash), in tables the server fills with its own
// cityHash64 (FillIdentities); a hash that differed would miss a stored
// identity and store it twice. Random identities of every length up to
// 600 bytes, arbitrary bytes included, hash the same on ClickHouse 18.16
// and on chDB (26.5).
func TestIdentityHashesAsTheServers(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	str := func() string {
		b := make([]byte, rng.IntN(601))
		for i := range b {
			if rng.IntN(4) == 0 {
				b[i] = byte(rng.IntN(256))
			} else {
				b[i] = byte('a' + rng.IntN(26))
			}
		}
		return string(b)
	}
	x := &storage.External{Name: "ids", Columns: []storage.Column{{Name: "n", Type: "UInt32"}, {Name: "m", Type: "String"},
		{Name: "p", Type: "String"}, {Name: "i", Type: "String"}}}
	var ids []storage.Identity
	for n := range 2000 {
		id := storage.Identity{Municipality: str(), Publisher: str(), ID: str()}
		x.Append(uint32(n), id.Municipality, id.Publisher, id.ID)
		ids = append(ids, id)
	}
	type row struct {
		N uint32 `ch:"n"`
		H uint64 `ch:"h"`
	}
	for _, s := range sides(t) {
		var rows []row
		// (Rows come back by number: chDB's JSON output does not keep
		// bytes that are not UTF-8.)
		if err := s.e.Select(context.Background(), &rows, storage.Query{SQL: "SELECT n, cityHash64(m, p, i) AS h FROM ids ORDER BY n",
			External: []*storage.External{x}}); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if len(rows) != len(ids) {
			t.Fatalf("%s: %d rows for %d identities", s.name, len(rows), len(ids))
		}
		for _, r := range rows {
			if id := ids[r.N]; storage.IdentityHash(id) != r.H {
				t.Fatalf("%s: cityHash64 of %q is %d on the server, %d here", s.name, id, r.H, storage.IdentityHash(id))
			}
		}
	}
}
