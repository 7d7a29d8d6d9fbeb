package report

import (
	"errors"
	"fmt"
	"time"
)

// Month is a calendar month, the contract period of a report.
type Month struct {
	Year  int
	Month time.Month
}

// Earliest is the first month a report can cover.
var Earliest = Month{2000, time.January}

// ErrMonthSyntax is returned by ParseMonth for anything but yyyy-mm.
var ErrMonthSyntax = errors.New("month must be yyyy-mm, such as 2026-10")

// ParseMonth reads a month written yyyy-mm.
func ParseMonth(s string) (Month, error) {
	if len(s) != 7 || s[4] != '-' {
		return Month{}, ErrMonthSyntax
	}
	for i, c := range []byte(s) {
		if i != 4 && (c < '0' || c > '9') {
			return Month{}, ErrMonthSyntax
		}
	}
	y := int(s[0]-'0')*1000 + int(s[1]-'0')*100 + int(s[2]-'0')*10 + int(s[3]-'0')
	m := int(s[5]-'0')*10 + int(s[6]-'0')
	if m < 1 || m > 12 {
		return Month{}, ErrMonthSyntax
	}
	return Month{y, time.Month(m)}, nil
}

// MonthOf is the month of t in loc.
func MonthOf(t time.Time, loc *time.Location) Month {
	t = t.In(loc)
	return Month{t.Year(), t.Month()}
}

// String writes the month as yyyy-mm.
func (m Month) String() string { return fmt.Sprintf("%04d-%02d", m.Year, int(m.Month)) }

// Before reports whether m comes before o.
func (m Month) Before(o Month) bool {
	return m.Year < o.Year || m.Year == o.Year && m.Month < o.Month
}

// Start is the first instant of the month in loc.
func (m Month) Start(loc *time.Location) time.Time {
	return time.Date(m.Year, m.Month, 1, 0, 0, 0, 0, loc)
}

// End is the first instant of the next month in loc.
func (m Month) End(loc *time.Location) time.Time {
	return time.Date(m.Year, m.Month+1, 1, 0, 0, 0, 0, loc)
}

// Days are the first instants of the days of the month in loc that start
// before to. A day lasts 23 or 25 hours when the clocks change.
func (m Month) Days(loc *time.Location, to time.Time) []time.Time {
	var out []time.Time
	for d := m.Start(loc); d.Month() == m.Month && d.Before(to); d = d.AddDate(0, 0, 1) {
		out = append(out, d)
	}
	return out
}
