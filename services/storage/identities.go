package storage

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The identity index answers "is this identity stored?" from the server's
// memory instead of reading index granules of strings: one table of engine
// Set per month of event time, identities_YYYYMM, holding the 64-bit
// cityHash64(municipality, publisher, id) of every stored event whose event
// time falls in that month (measurements and incidents of that monthly
// partition, catalogue events of that month). A Set keeps its keys in a
// hash set in memory, writes every insert to disk as well and loads them
// again when the server starts; `x IN set_table` is a membership test.
//
// A hit is not proof (two identities may share a hash, and a writer records
// identities in the index before it inserts their rows): the tables are
// checked for the hits only (IndexHits, then Existing). A miss is proof that the identity is not
// stored, as long as every stored identity is in the index: the ingest
// service adds a batch's identities to the index before it inserts their
// rows, and fills a missing month's table from the event tables
// (FillIdentities) under a temporary name that it renames into place once
// complete.

// IdentityTablePrefix starts the name of every table of the identity index.
const IdentityTablePrefix = "identities_"

// fillInfix marks a month's table that is still being filled.
const fillInfix = "_fill_"

// IdentityTable is the name of the index table of month (YYYYMM).
func IdentityTable(month uint32) string { return fmt.Sprintf("%s%06d", IdentityTablePrefix, month) }

// IdentityFillTable is the name under which a process started at start
// fills the index table of month before renaming it into place; a random
// suffix keeps apart processes that start at the same instant.
func IdentityFillTable(month uint32, start time.Time) string {
	return fmt.Sprintf("%s%s%d_%08x", IdentityTable(month), fillInfix, start.UnixNano(), rand.Uint32())
}

// ParseIdentityTable reads the month of an index table's name, and for a
// table being filled when its filling started; ok is false for any other
// name.
func ParseIdentityTable(name string) (month uint32, filling time.Time, ok bool) {
	rest, found := strings.CutPrefix(name, IdentityTablePrefix)
	if !found || len(rest) < 6 {
		return 0, time.Time{}, false
	}
	m, err := strconv.ParseUint(rest[:6], 10, 32)
	if err != nil || m%100 < 1 || m%100 > 12 {
		return 0, time.Time{}, false
	}
	switch nonce, isFill := strings.CutPrefix(rest[6:], fillInfix); {
	case rest[6:] == "":
		return uint32(m), time.Time{}, true
	case isFill:
		start, _, _ := strings.Cut(nonce, "_")
		ns, err := strconv.ParseInt(start, 10, 64)
		if err != nil {
			return 0, time.Time{}, false
		}
		return uint32(m), time.Unix(0, ns), true
	}
	return 0, time.Time{}, false
}

// Month is the month (YYYYMM) of t in UTC, as toYYYYMM names partitions.
func Month(t time.Time) uint32 {
	t = t.UTC()
	return uint32(t.Year())*100 + uint32(t.Month())
}

// MonthStart is the first instant of month (YYYYMM), in UTC.
func MonthStart(month uint32) time.Time {
	return time.Date(int(month/100), time.Month(month%100), 1, 0, 0, 0, 0, time.UTC)
}

// CreateIdentityTable creates an empty index table when missing.
func CreateIdentityTable(table string) Query {
	return Query{SQL: "CREATE TABLE IF NOT EXISTS " + table + " (h UInt64) ENGINE = Set"}
}

// IdentityTables lists the index tables of the database (TableName),
// complete or being filled.
func IdentityTables() Query {
	return Query{SQL: "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, ?)", Args: []any{IdentityTablePrefix}}
}

// identityHash is the key of the index (IdentityHash), computed by the
// server when it fills a month from the event tables.
const identityHash = "cityHash64(municipality, publisher, id)"

// FillIdentities adds to table the identity of every stored event whose
// event time is in month (YYYYMM): the month's partition of measurements
// and incidents, and the catalogue's events of that month.
func FillIdentities(table string, month uint32) Query {
	from, to := MonthStart(month).Unix(), MonthStart(month).AddDate(0, 1, 0).Unix()
	parts := make([]string, len(EventTables))
	var args []any
	for i, t := range EventTables {
		parts[i] = "SELECT " + identityHash + " AS h FROM " + t + " WHERE time >= toDateTime(?) AND time < toDateTime(?)"
		args = append(args, from, to)
	}
	return Query{SQL: "INSERT INTO " + table + " " + strings.Join(parts, " UNION ALL "), Args: args}
}

// RenameTable renames a table; it fails when to exists.
func RenameTable(from, to string) Query { return Query{SQL: "RENAME TABLE " + from + " TO " + to} }

// IdentityHash is the key of id in the index: cityHash64(municipality,
// publisher, id), as the server computes it when it fills a month
// (FillIdentities). The ingest computes it itself, so that a batch's
// look-up and record send 8 bytes per identity instead of its three
// strings, and the server hashes nothing.
func IdentityHash(id Identity) uint64 { return Hash(id.Municipality, id.Publisher, id.ID) }

// batchHashes is an external table of identity hashes.
func batchHashes(hashes []uint64) *External {
	t := &External{Name: "batch_hashes", Columns: []Column{{"h", "UInt64"}}}
	for _, h := range hashes {
		t.Append(h)
	}
	return t
}

// AddIdentities records the identity hashes (IdentityHash) in the index
// table of their month.
func AddIdentities(table string, hashes []uint64) Query {
	return Query{SQL: "INSERT INTO " + table + " SELECT h FROM batch_hashes", External: []*External{batchHashes(hashes)}}
}

// IndexHit is an identity hash found in the index table of a month.
type IndexHit struct {
	Hash  uint64 `ch:"h"`
	Month uint32 `ch:"month"` // YYYYMM
}

// IndexHits selects those of the identity hashes that are in the index
// tables of months (IndexHit rows, one per month that has it): their
// identities are the candidates, as a hit is no proof; a miss is. A batch
// of new identities is answered by this query alone, without reading any
// granule of the event tables; Existing then checks the candidates, if
// any, in the months of their hits only (a stored identity is in the table
// of its stored row's month).
func IndexHits(hashes []uint64, months []uint32) Query {
	if len(months) == 0 {
		return Query{SQL: "SELECT h, toUInt32(0) AS month FROM batch_hashes WHERE 0", External: []*External{batchHashes(hashes)}}
	}
	parts := make([]string, len(months))
	args := make([]any, len(months))
	for i, m := range months {
		parts[i] = "SELECT h, toUInt32(?) AS month FROM batch_hashes WHERE h IN " + IdentityTable(m)
		args[i] = m
	}
	return Query{SQL: strings.Join(parts, " UNION ALL "), Args: args, External: []*External{batchHashes(hashes)}}
}

// inMonths restricts a query of an event table to the rows whose event
// time is in months (all rows when months is empty).
func inMonths(months []uint32) (string, []any) {
	if len(months) == 0 {
		return "", nil
	}
	args := make([]any, len(months))
	for i, m := range months {
		args[i] = m
	}
	return " AND toYYYYMM(time) IN (" + repeatList(len(months), "?") + ")", args
}
