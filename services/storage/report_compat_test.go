package storage_test

import (
	"testing"
	"time"
	_ "time/tzdata" // Europe/Madrid without the system's zone files

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// madrid is the default time zone of monthly reports.
var madrid = func() *time.Location {
	l, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		panic(err)
	}
	return l
}()

// monthDays are the first instants of the days of a month in loc, and the
// month's end.
func monthDays(year int, month time.Month, loc *time.Location) ([]time.Time, time.Time) {
	var days []time.Time
	d := time.Date(year, month, 1, 0, 0, 0, 0, loc)
	for ; d.Month() == month; d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	return days, d
}

// compareReportQueries runs the monthly report's query on both engines
// over October 2026 in Europe/Madrid (31 days, the 25th lasting 25 hours),
// with measurements 1 ns either side of the month's edges and of a
// midnight, and in the hour that occurs twice.
func compareReportQueries(t *testing.T, ss []side) {
	t.Helper()
	days, end := monthDays(2026, time.October, madrid)
	start := days[0]
	at := func(s string) time.Time {
		x, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	var evs []*contract.Event
	for i, x := range []time.Time{
		start.Add(-time.Nanosecond), start, days[1].Add(-time.Nanosecond), days[1],
		at("2026-10-25T00:30:00+02:00"), at("2026-10-25T02:30:00+02:00"), at("2026-10-25T02:30:00+01:00"), at("2026-10-25T23:30:00+01:00"),
		days[25], end.Add(-time.Nanosecond), end,
	} {
		v := 2.0 + float64(i%2) // meets the target 2.5 every other time
		evs = append(evs,
			storagetest.Event("mes", "aigues", x, &contract.KPIMeasured{Service: "aigua", KPI: "pressio", Value: v}),
			storagetest.Event("mes", contract.Council, x, &contract.KPIMeasured{Service: "aigua", KPI: "pressio", Value: v}),
			storagetest.Event("mes", "intrus", x, &contract.KPIMeasured{Service: "aigua", KPI: "pressio", Value: v}),
			storagetest.Event("mes", contract.Council, x, &contract.KPIMeasured{Service: "oac", KPI: "espera", Value: 10 * v}),
			storagetest.Event("altre", "aigues", x, &contract.KPIMeasured{Service: "aigua", KPI: "pressio", Value: v}))
	}
	for _, s := range ss {
		storagetest.Store(t, s.e, evs...)
	}
	targets := []storage.Target{
		{Series: storage.Series{Municipality: "mes", Service: "aigua", KPI: "pressio", Publisher: "aigues"}, Target: 2.5},
		{Series: storage.Series{Municipality: "mes", Service: "aigua", KPI: "pressio", Publisher: contract.Council}, Target: 2.5},
		{Series: storage.Series{Municipality: "mes", Service: "oac", KPI: "espera", Publisher: contract.Council}, LowerIsBetter: true, Target: 25},
	}
	for _, final := range []bool{false, true} {
		rows := same[storage.DayCounts](t, "CountDays", ss, storage.CountDays("mes", targets, days, end, final), false)
		perDay := map[uint32]uint64{}
		var samples, meeting uint64
		for _, r := range rows {
			if r.Publisher == "intrus" {
				t.Errorf("CountDays counted a series it was not given: %+v", r)
			}
			if r.Service == "aigua" && r.Publisher == "aigues" {
				perDay[r.Day] += r.Samples
				samples, meeting = samples+r.Samples, meeting+r.Meeting
			}
		}
		// In the month: its first instant and 1 ns before 2 October, 2
		// October, four on the 25th, the 26th, and 1 ns before the end.
		if want := map[uint32]uint64{1: 2, 2: 1, 25: 4, 26: 1, 31: 1}; !equalCounts(perDay, want) || samples != 9 || meeting != 5 {
			t.Errorf("final %v: per day %v (samples %d, meeting %d), want %v (9, 5)", final, perDay, samples, meeting, want)
		}
	}
	same[storage.DayCounts](t, "CountDays", ss, storage.CountDays("altre", targets, days, end, false), true)
	// The current month, cut at an instant: nothing at or after it.
	cut := at("2026-10-25T02:30:00+01:00")
	rows := same[storage.DayCounts](t, "CountDays", ss, storage.CountDays("mes", targets[:1], days[:25], cut, false), false)
	var n uint64
	for _, r := range rows {
		n += r.Samples
	}
	if n != 5 {
		t.Errorf("cut at %s: %d samples, want 5", cut, n)
	}
}

func equalCounts(a, b map[uint32]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
