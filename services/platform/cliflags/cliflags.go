// Package cliflags holds what the platform's command-line programs (kpictl
// and the simulator) share on top of github.com/urfave/cli/v3: environment
// variables read through a getenv function, flag values parsed with the
// platform's own rules (durations with days, NATS URLs, ranges), each error
// naming the expected form, and the NATS connection settings.
package cliflags

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/assoliment/assoliment/services/platform/config"
)

// Env is the flag source of the named environment variables, looked up
// with getenv (os.Getenv in main, a map in tests). A variable set to the
// empty string counts as unset, as in the services' settings.
func Env(getenv func(string) string, keys ...string) cli.ValueSourceChain {
	var c cli.ValueSourceChain
	for _, k := range keys {
		c.Chain = append(c.Chain, envVar{key: k, getenv: getenv})
	}
	return c
}

type envVar struct {
	key    string
	getenv func(string) string
}

func (e envVar) Lookup() (string, bool) {
	if e.getenv == nil {
		return "", false
	}
	v := e.getenv(e.key)
	return v, v != ""
}

// IsFromEnv and Key let the help text show the variable.
func (e envVar) IsFromEnv() bool  { return true }
func (e envVar) Key() string      { return e.key }
func (e envVar) String() string   { return "environment variable " + e.key }
func (e envVar) GoString() string { return "cliflags.Env(" + strconv.Quote(e.key) + ")" }

// Into is a flag Validator that parses the flag's text with parse and keeps
// the value in dst. Set ValidateDefaults on the flag so that the default is
// parsed the same way and dst always holds the flag's value.
func Into[T any](dst *T, parse func(string) (T, error)) func(string) error {
	return func(s string) error {
		v, err := parse(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		*dst = v
		return nil
	}
}

// IntIn parses a whole number from lo to hi.
func IntIn(lo, hi int) func(string) (int, error) {
	return func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("must be a whole number from %d to %d", lo, hi)
		}
		return n, nil
	}
}

// Int64 parses any whole number.
func Int64(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("must be a whole number")
	}
	return n, nil
}

// FloatIn parses a number from lo to hi.
func FloatIn(lo, hi float64) func(string) (float64, error) {
	return func(s string) (float64, error) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f >= lo && f <= hi) {
			return 0, fmt.Errorf("must be a number from %g to %g", lo, hi)
		}
		return f, nil
	}
}

// DurationIn parses a duration with config.ParseDuration ("30s", "72h",
// "400d", "1d12h") from lo to hi.
func DurationIn(lo, hi time.Duration) func(string) (time.Duration, error) {
	return func(s string) (time.Duration, error) {
		d, err := config.ParseDuration(s)
		if err != nil || d < lo || d > hi {
			return 0, fmt.Errorf("must be a duration such as 90s, 72h or 400d, from %s to %s", days(lo), days(hi))
		}
		return d, nil
	}
}

func days(d time.Duration) string {
	if d >= config.Day && d%config.Day == 0 {
		return strconv.FormatInt(int64(d/config.Day), 10) + "d"
	}
	return d.String()
}

// Time parses an RFC 3339 time; the empty string is the zero time.
func Time(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 time such as 2026-11-20T12:00:00Z or 2026-11-20T13:00:00+01:00")
	}
	return t, nil
}

// OneOf parses one of values.
func OneOf(values ...string) func(string) (string, error) {
	return func(s string) (string, error) {
		if !slices.Contains(values, s) {
			return "", fmt.Errorf("must be one of %s", strings.Join(values, ", "))
		}
		return s, nil
	}
}

// Checked parses text that check accepts (config.NATSURL, for example).
func Checked(check func(string) error) func(string) (string, error) {
	return func(s string) (string, error) {
		if err := check(s); err != nil {
			return "", err
		}
		return s, nil
	}
}
