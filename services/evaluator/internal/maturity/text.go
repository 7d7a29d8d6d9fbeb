package maturity

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// decimal formats v with two decimals, or with as many more as needed for the
// text to compare with threshold as v does (0.899 against 0.9 is "0.899",
// never "0.90").
func decimal(v, threshold float64) string {
	for prec := 2; prec <= 6; prec++ {
		s := strconv.FormatFloat(v, 'f', prec, 64)
		if r, _ := strconv.ParseFloat(s, 64); (r >= threshold) == (v >= threshold) {
			return s
		}
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// limit formats a threshold share with at least two decimals: 0.9 is "0.90",
// 0.925 is "0.925".
func limit(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	i := strings.IndexByte(s, '.')
	if i < 0 {
		return s + ".00"
	}
	return s + strings.Repeat("0", max(0, 3-(len(s)-i)))
}

// vsShare is "0.90 ≥ 0.90" or "0.85 < 0.90".
func vsShare(v, threshold float64) string {
	if v >= threshold {
		return decimal(v, threshold) + " ≥ " + limit(threshold)
	}
	return decimal(v, threshold) + " < " + limit(threshold)
}

// vsCount is "3 ≥ 2" or "1 < 2".
func vsCount(n, threshold int) string {
	if n >= threshold {
		return fmt.Sprintf("%d ≥ %d", n, threshold)
	}
	return fmt.Sprintf("%d < %d", n, threshold)
}

// count is "1 service" or "3 services".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// span is "30 days" for whole days, else the Go form of d.
func span(d time.Duration) string {
	if d%Day == 0 {
		return count(int(d/Day), "day")
	}
	return d.String()
}

// list is ": a, b, c", or "" for no names.
func list(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return ": " + strings.Join(names, ", ")
}
