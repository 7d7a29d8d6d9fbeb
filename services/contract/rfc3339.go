package contract

import "time"

// parseRFC3339 parses s as an RFC 3339 date-time (section 5.6) and nothing
// else, keeping every digit of the fraction down to the nanosecond. Go's
// time.Parse is laxer: it takes a comma before the fraction and offsets such
// as +24:00 or +01:60, and quietly shifts the instant. A leap second (second
// 60) is refused: Go cannot represent it and none falls within the accepted
// window of event times.
func parseRFC3339(s string) (time.Time, bool) {
	// 2006-01-02T15:04:05[.fraction](Z|+hh:mm|-hh:mm)
	if len(s) < len("2006-01-02T15:04:05Z") {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4])
	month, ok2 := digits(s[5:7])
	day, ok3 := digits(s[8:10])
	hour, ok4 := digits(s[11:13])
	minute, ok5 := digits(s[14:16])
	second, ok6 := digits(s[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(year, time.Month(month)) ||
		hour > 23 || minute > 59 || second > 59 {
		return time.Time{}, false
	}
	rest := s[19:]
	nsec := 0
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			if n <= 9 {
				nsec = nsec*10 + int(rest[n]-'0')
			}
			n++
		}
		if n == 1 {
			return time.Time{}, false
		}
		for i := n; i <= 9; i++ {
			nsec *= 10
		}
		rest = rest[n:]
	}
	loc := time.UTC
	switch {
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits(rest[1:3])
		om, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset := oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
		loc = time.FixedZone("", offset)
	default:
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, second, nsec, loc), true
}

// digits reads a run of ASCII digits; no sign, no spaces.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
