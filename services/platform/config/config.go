// Package config reads a service's settings from flags with environment
// variable equivalents (a flag wins over its variable, the variable over the
// default) and validates them, listing every problem at once, each naming
// the flag, the variable and the expected form.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Set collects settings, then Parse reads and checks them all.
type Set struct {
	fs       *flag.FlagSet
	getenv   func(string) string
	settings []*setting
}

type setting struct {
	flag, env, def, form, usage string
	raw                         *string
	apply                       func(string) error
}

// New returns an empty set for the named program. getenv looks up
// environment variables (os.Getenv in main, a map in tests).
func New(name string, getenv func(string) string) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &Set{fs: fs, getenv: getenv}
}

func (s *Set) add(p *setting, usage string) {
	p.usage = usage
	p.raw = s.fs.String(p.flag, p.def, fmt.Sprintf("%s (env %s; %s)", usage, p.env, p.form))
	s.settings = append(s.settings, p)
}

// String registers a string setting. check, when not nil, validates it.
func (s *Set) String(dst *string, flagName, env, def, usage string, check func(string) error) {
	s.add(&setting{flag: flagName, env: env, def: def, form: "text", apply: func(v string) error {
		if check != nil {
			if err := check(v); err != nil {
				return err
			}
		}
		*dst = v
		return nil
	}}, usage)
}

// Duration registers a duration ("200ms", "30s", "1h", or days as "30d")
// between lo and hi inclusive.
func (s *Set) Duration(dst *time.Duration, flagName, env, def, usage string, lo, hi time.Duration) {
	form := fmt.Sprintf("a duration such as 30s, 5m or 2d, from %s to %s", fmtDur(lo), fmtDur(hi))
	s.add(&setting{flag: flagName, env: env, def: def, form: form, apply: func(v string) error {
		d, err := ParseDuration(v)
		if err != nil || d < lo || d > hi {
			return fmt.Errorf("must be %s", form)
		}
		*dst = d
		return nil
	}}, usage)
}

// Bytes registers a size such as "512MiB", "10GiB" or a plain number of
// bytes, between lo and hi inclusive.
func (s *Set) Bytes(dst *int64, flagName, env, def, usage string, lo, hi int64) {
	form := fmt.Sprintf("a size such as 512MiB or 10GiB, from %s to %s", humanize.IBytes(uint64(lo)), humanize.IBytes(uint64(hi)))
	s.add(&setting{flag: flagName, env: env, def: def, form: form, apply: func(v string) error {
		n, err := humanize.ParseBytes(strings.TrimSpace(v))
		if err != nil || n < uint64(lo) || n > uint64(hi) {
			return fmt.Errorf("must be %s", form)
		}
		*dst = int64(n)
		return nil
	}}, usage)
}

// Int registers a whole number between lo and hi inclusive.
func (s *Set) Int(dst *int, flagName, env string, def int, usage string, lo, hi int) {
	form := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	s.add(&setting{flag: flagName, env: env, def: strconv.Itoa(def), form: form, apply: func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be %s", form)
		}
		*dst = n
		return nil
	}}, usage)
}

// Float registers a number between lo and hi inclusive.
func (s *Set) Float(dst *float64, flagName, env string, def float64, usage string, lo, hi float64) {
	form := fmt.Sprintf("a number from %g to %g", lo, hi)
	s.add(&setting{flag: flagName, env: env, def: strconv.FormatFloat(def, 'g', -1, 64), form: form, apply: func(v string) error {
		n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("must be %s", form)
		}
		*dst = n
		return nil
	}}, usage)
}

// Bool registers true/false.
func (s *Set) Bool(dst *bool, flagName, env string, def bool, usage string) {
	s.add(&setting{flag: flagName, env: env, def: strconv.FormatBool(def), form: "true or false", apply: func(v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return errors.New("must be true or false")
		}
		*dst = b
		return nil
	}}, usage)
}

// Parse reads args (without the program name), fills every setting and
// returns all problems joined in one error. -h/--help returns flag.ErrHelp.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return helpError(s.Usage())
		}
		return fmt.Errorf("%v\n%s", err, s.Usage())
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q\n%s", s.fs.Args(), s.Usage())
	}
	set := map[string]bool{}
	s.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var problems []string
	for _, p := range s.settings {
		v, from := *p.raw, "--"+p.flag
		if !set[p.flag] {
			if e := s.getenv(p.env); e != "" {
				v, from = e, p.env
			} else {
				from = "default of --" + p.flag
			}
		}
		if err := p.apply(v); err != nil {
			problems = append(problems, fmt.Sprintf("%s (--%s / %s) = %q: %v", from, p.flag, p.env, v, err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// Usage describes every setting.
func (s *Set) Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage of %s:\n", s.fs.Name())
	for _, p := range s.settings {
		fmt.Fprintf(&b, "  --%s, env %s (default %q)\n      %s; %s\n", p.flag, p.env, p.def, p.usage, p.form)
	}
	return b.String()
}

// Day is the length of the "d" unit of ParseDuration.
const Day = 24 * time.Hour

// ParseDuration is time.ParseDuration plus whole days: "30d", or days
// followed by a Go duration, "1d12h". It is the one duration parser of the
// platform: service settings, the criteria file and the tools all read
// durations with it. A value too large for a time.Duration (about 292
// years) is an error, never a silently wrapped duration.
func ParseDuration(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	i := strings.IndexByte(v, 'd')
	if i < 0 {
		return time.ParseDuration(v)
	}
	days, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil || days < 0 {
		return 0, fmt.Errorf("%q: %q is not a whole number of days", v, v[:i])
	}
	if days > int64(math.MaxInt64/Day) {
		return 0, fmt.Errorf("%q: %d days is more than a duration can hold", v, days)
	}
	total := time.Duration(days) * Day
	if rest := v[i+1:]; rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q: %q after the days is not a duration such as 12h", v, rest)
		}
		if d > math.MaxInt64-total {
			return 0, fmt.Errorf("%q is more than a duration can hold", v)
		}
		total += d
	}
	return total, nil
}

func fmtDur(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// HostPort checks host:port.
func HostPort(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return errors.New("must be host:port, such as 127.0.0.1:9000")
	}
	return nil
}

// NATSURL checks a comma-separated list of NATS server URLs, the one rule
// for every program of the platform. nats:// and tls:// reach a server's
// client port; ws:// and wss:// its websocket listener (none of the
// shipped configurations enables one), which the client library speaks
// too but never mixed with the others in one list.
func NATSURL(v string) error {
	const form = "must be nats://host:port or tls://host:port (comma-separated for a cluster), or ws:// / wss:// URLs for a websocket listener"
	websocket := 0
	urls := strings.Split(v, ",")
	for _, u := range urls {
		p, err := url.Parse(strings.TrimSpace(u))
		if err != nil || p.Host == "" {
			return errors.New(form)
		}
		switch p.Scheme {
		case "nats", "tls":
		case "ws", "wss":
			websocket++
		default:
			return errors.New(form)
		}
	}
	if websocket > 0 && websocket < len(urls) {
		return errors.New("must not mix ws:// or wss:// URLs with nats:// or tls:// ones")
	}
	return nil
}

// Identifier checks a NATS stream/consumer or database name: letters,
// digits, '_' and '-'.
func Identifier(v string) error {
	if v == "" {
		return errors.New("must not be empty")
	}
	for _, c := range v {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return errors.New("must contain only letters, digits, '_' and '-'")
		}
	}
	return nil
}

// helpError is returned for -h/--help: it is flag.ErrHelp and reads as the
// usage text.
type helpError string

func (h helpError) Error() string { return string(h) }

func (h helpError) Is(target error) bool { return target == flag.ErrHelp }
