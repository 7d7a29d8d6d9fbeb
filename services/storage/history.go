package storage

import (
	"strings"
	"time"
)

// LastLevel is a municipality's last recorded level.
type LastLevel struct {
	Municipality string `ch:"municipality"`
	Level        uint8  `ch:"last_level"`
}

// LastLevels selects the last recorded level of every municipality
// (LastLevel): the to_level of its latest change.
func LastLevels() Query {
	return Query{SQL: "SELECT municipality, argMax(to_level, evaluated_at) AS last_level FROM " + MaturityChanges + " FINAL GROUP BY municipality"}
}

// MaturityChangeColumns are the columns of maturity_changes that
// MaturityChangeRow fills.
var MaturityChangeColumns = []string{"municipality", "from_level", "to_level", "evaluated_at", "failing", "recorded_at"}

// MaturityChangeRow is a level change of municipality found by the
// evaluation at T, recorded at now; evaluated_at keeps whole seconds.
func MaturityChangeRow(municipality string, from, to int, at time.Time, failing []string, now time.Time) []any {
	return []any{municipality, uint8(from), uint8(to), at.UTC().Truncate(time.Second), strings.Join(failing, ","), now.UTC().Truncate(time.Second)}
}
