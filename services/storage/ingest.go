package storage

import (
	"fmt"
	"strings"
	"time"
)

// Identity is what makes an event unique.
type Identity struct {
	Municipality string `ch:"municipality"`
	Publisher    string `ch:"publisher"`
	ID           string `ch:"id"`
}

// identities is the external table batch_ids (m, p, i) of ids.
func identities(ids []Identity) *External {
	t := &External{Name: "batch_ids", Columns: []Column{{"m", "String"}, {"p", "String"}, {"i", "String"}}}
	for _, id := range ids {
		t.Append(id.Municipality, id.Publisher, id.ID)
	}
	return t
}

// Existing finds which of ids are stored, in any event table, with an
// event time in months (any, when empty); it selects Identity rows.
func Existing(ids []Identity, months []uint32) Query {
	where, margs := inMonths(months)
	parts := make([]string, len(EventTables))
	var args []any
	for i, t := range EventTables {
		parts[i] = "SELECT municipality, publisher, id FROM " + t + " WHERE (municipality, publisher, id) IN (SELECT m, p, i FROM batch_ids)" + where
		args = append(args, margs...)
	}
	return Query{SQL: strings.Join(parts, " UNION ALL "), Args: args, External: []*External{identities(ids)}}
}

// StoredTwice is an identity stored more than once in measurements, with
// the monthly partitions (YYYYMM) its copies are in.
type StoredTwice struct {
	Identity
	Partitions []uint32 `ch:"partitions"`
}

// FindStoredTwice finds which of ids have more than one row in
// measurements with an event time in months (any, when empty); it selects
// StoredTwice rows.
func FindStoredTwice(ids []Identity, months []uint32) Query {
	where, args := inMonths(months)
	return Query{
		SQL: `SELECT municipality, publisher, id, groupUniqArray(toYYYYMM(time)) AS partitions FROM ` + Measurements + `
		WHERE (municipality, publisher, id) IN (SELECT m, p, i FROM batch_ids)` + where + `
		GROUP BY municipality, publisher, id HAVING count() > 1`,
		Args:     args,
		External: []*External{identities(ids)},
	}
}

// MergePartition merges one monthly partition of measurements, so one row
// per identity remains.
func MergePartition(partition uint32) Query {
	return Query{SQL: fmt.Sprintf("OPTIMIZE TABLE %s PARTITION %d FINAL", Measurements, partition)}
}

// DuplicateColumns are the columns of the duplicates table DuplicateRow fills.
var DuplicateColumns = []string{"municipality", "publisher", "id", "detected_at", "resolved", "version"}

// DuplicateRow records id as stored twice (resolved false) or merged
// (true) at now; the later record of an identity stands.
func DuplicateRow(id Identity, resolved bool, now time.Time) []any {
	r := uint8(0)
	if resolved {
		r = 1
	}
	return []any{id.Municipality, id.Publisher, id.ID, now.UTC().Truncate(time.Second), r, uint64(now.UnixNano()) + uint64(r)}
}
