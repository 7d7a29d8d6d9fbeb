package contract

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Limits of the time rules.
const (
	// MaxAhead is how far ahead of the platform's clock an event time may be.
	MaxAhead = 5 * time.Minute
	// DefaultMaxLateness is how old an event time may be by default.
	DefaultMaxLateness = 400 * 24 * time.Hour
)

// Rules are the parameters of validation that are not fixed by the contract.
type Rules struct {
	// Now is the platform's clock for the time rules.
	Now time.Time
	// MaxLateness is the oldest accepted event time, relative to Now
	// (DefaultMaxLateness when zero).
	MaxLateness time.Duration
}

// object is a JSON object's members, in order, as raw values; names are
// unique (the decoder refuses duplicates; binary mode checks its headers).
// An event has about a dozen: a scan costs less than a map's allocations.
type object []objectMember

type objectMember struct {
	name  string
	value jsontext.Value
}

// get returns the value of member name; false when there is none.
func (o object) get(name string) (jsontext.Value, bool) {
	for i := range o {
		if o[i].name == name {
			return o[i].value, true
		}
	}
	return nil, false
}

// set gives member name the value v, replacing the one it had.
func (o object) set(name string, v jsontext.Value) object {
	for i := range o {
		if o[i].name == name {
			o[i].value = v
			return o
		}
	}
	return append(o, objectMember{name, v})
}

// objectReader is a decoder and its input, reused: the decoder's buffers
// and its set of names seen.
type objectReader struct {
	in  bytes.Buffer
	dec jsontext.Decoder
}

var objectReaders = sync.Pool{New: func() any { return new(objectReader) }}

// readObject reads one JSON object, with nothing after it, member by
// member, as json.Unmarshal reads a map of raw values (duplicate names and
// invalid UTF-8 are errors of the decoder), without reflection and without
// copies: the values are slices of b. A third of the time of decoding an
// event went to map assignments through reflect.
func readObject(b []byte) (object, error) {
	r := objectReaders.Get().(*objectReader)
	defer objectReaders.Put(r)
	r.in = *bytes.NewBuffer(b)
	dec := &r.dec
	dec.Reset(&r.in)
	defer func() { // b is not kept
		r.in = bytes.Buffer{}
		dec.Reset(&r.in)
	}()
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("cannot read a JSON %s as an object", KindName(tok.Kind()))
	}
	m := make(object, 0, 12)
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		key := name.String() // the token is valid only until the next read
		value, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		end := dec.InputOffset()
		m = append(m, objectMember{key, jsontext.Value(b[end-int64(len(value)) : end : end])})
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected data after the top-level object")
		}
		return nil, err
	}
	return m, nil
}

// Decode validates one structured-mode message (the whole event as one JSON
// object) received on subject and returns the event, or the rejection with
// its reason. A message that breaks several rules gets the reason of the
// first check that fails; checks run in this order: size, JSON, CloudEvent,
// specversion, required attributes, type, envelope fields, subject,
// publisher, data fields, time rules.
func Decode(subject string, msg []byte, rules Rules) (*Event, *Rejection) {
	if len(msg) > MaxMessageSize {
		return nil, reject(ReasonTooLarge, "message is %d bytes; the limit is %d", len(msg), MaxMessageSize)
	}
	// An object is read in one pass; anything else is read whole first,
	// to tell malformed JSON from another kind of value.
	if first := bytes.TrimLeft(msg, " \t\r\n"); len(first) == 0 || first[0] != '{' {
		var root jsontext.Value
		if err := json.Unmarshal(msg, &root); err != nil {
			return nil, reject(ReasonMalformedJSON, "%v", cleanErr(err))
		}
		return nil, reject(ReasonNotCloudEvent, "message is a JSON %s, not an object", KindName(root.Kind()))
	}
	env, err := readObject(msg)
	if err != nil {
		return nil, reject(ReasonMalformedJSON, "%v", cleanErr(err))
	}
	return validate(subject, env, false, rules)
}

// validate checks an envelope read from either content mode: every
// attribute as a JSON value, data included. In binary mode every attribute
// is a JSON string and data is the message body.
func validate(subject string, env object, binary bool, rules Rules) (*Event, *Rejection) {
	if sv, ok := present(env, "specversion"); !ok {
		return nil, reject(ReasonNotCloudEvent, "no specversion attribute: not a CloudEvent")
	} else if s, ok := str(sv); !ok || s != SpecVersion {
		return nil, reject(ReasonUnsupportedSpecVersion, "specversion is %s; only \"1.0\" is supported", short(sv))
	}
	for _, k := range []string{"id", "source", "type", "time", "municipality", "publisher"} {
		if _, ok := present(env, k); !ok {
			return nil, reject(ReasonMissingField, "required attribute %q is missing", k)
		}
	}
	if _, ok := present(env, "data"); !ok {
		if b64, ok := present(env, "data_base64"); ok {
			return nil, reject(ReasonMissingField, "required attribute \"data\" is missing; found \"data_base64\" (%s) instead, "+
				"but the contract needs the data as a JSON object in \"data\"", describe(b64))
		}
		if binary {
			return nil, reject(ReasonMissingField, "the message body, which is the data in binary mode, is empty")
		}
		return nil, reject(ReasonMissingField, "required attribute %q is missing", "data")
	}
	ev := &Event{}
	var rej *Rejection
	if ev.Type, rej = envString(env, "type"); rej != nil {
		return nil, rej
	}
	kind, known := KindOf(ev.Type)
	if !known {
		return nil, reject(ReasonUnknownType, "type %q is not a contract v1 event type", ev.Type)
	}
	if ev.ID, rej = envString(env, "id"); rej != nil {
		return nil, rej
	}
	if len(ev.ID) > 128 || !printableASCII(ev.ID) {
		return nil, reject(ReasonInvalidField, "id must be 1-128 printable ASCII characters")
	}
	if ev.Source, rej = envString(env, "source"); rej != nil {
		return nil, rej
	}
	if !validURIRef(ev.Source) {
		return nil, reject(ReasonInvalidField, "source %q is not a URI-reference", ev.Source)
	}
	ts, rej := envString(env, "time")
	if rej != nil {
		return nil, rej
	}
	var ok bool
	if ev.Time, ok = parseRFC3339(ts); !ok {
		return nil, reject(ReasonInvalidField, "time %q is not an RFC 3339 timestamp with an offset "+
			"(2006-01-02T15:04:05Z, 2006-01-02T15:04:05.999+01:00)", ts)
	}
	if ev.Municipality, rej = envString(env, "municipality"); rej != nil {
		return nil, rej
	}
	if !ValidSlug(ev.Municipality) {
		return nil, reject(ReasonInvalidField, "municipality %q must match %s", ev.Municipality, slugRE)
	}
	if ev.Publisher, rej = envString(env, "publisher"); rej != nil {
		return nil, rej
	}
	if !ValidSlug(ev.Publisher) {
		return nil, reject(ReasonInvalidField, "publisher %q must match %s", ev.Publisher, slugRE)
	}
	if v, ok := present(env, "datacontenttype"); ok {
		s, ok := str(v)
		if !ok || !jsonMediaType(s) {
			return nil, reject(ReasonInvalidField, "datacontenttype is %s; only \"application/json\" is accepted, "+
				"with parameters such as \"; charset=utf-8\"", short(v))
		}
		ev.DataContentType = s
	}
	parts, err := ParseSubject(subject)
	if err != nil {
		return nil, reject(ReasonSubjectMismatch, "%v", err)
	}
	if parts.Municipality != ev.Municipality {
		return nil, reject(ReasonSubjectMismatch, "envelope municipality %q differs from subject municipality %q", ev.Municipality, parts.Municipality)
	}
	if parts.Publisher != ev.Publisher {
		return nil, reject(ReasonSubjectMismatch, "envelope publisher %q differs from subject publisher %q", ev.Publisher, parts.Publisher)
	}
	if parts.Kind != kind {
		return nil, reject(ReasonSubjectMismatch, "type %s travels on kind %q, not %q", ev.Type, kind, parts.Kind)
	}
	if kind == KindCatalog && ev.Publisher != Council {
		return nil, reject(ReasonForbiddenPublisher, "catalog events come only from %q, not %q", Council, ev.Publisher)
	}
	if _, ok := present(env, "data_base64"); ok {
		return nil, reject(ReasonInvalidField, "\"data\" and \"data_base64\" are both present; send the data only, as a JSON object in \"data\"")
	}
	body, _ := env.get("data")
	if body.Kind() != '{' {
		return nil, reject(ReasonInvalidField, "data must be a JSON object, not a %s", KindName(body.Kind()))
	}
	data, err := readObject(body)
	if err != nil {
		return nil, reject(ReasonMalformedJSON, "data: %v", cleanErr(err))
	}
	if ev.Data, rej = decodeData(ev.Type, data); rej != nil {
		if _, ok := data.get("specversion"); ok && binary {
			rej.Message += "; the body looks like a whole structured-mode event: send it with the header " +
				"Content-Type: application/cloudevents+json, or send only the data as the body"
		}
		return nil, rej
	}
	now := rules.Now
	if ev.Time.Sub(now) > MaxAhead {
		return nil, reject(ReasonFutureTime, "time %s is %s ahead of the platform clock; at most %s is allowed",
			ev.Time.Format(time.RFC3339Nano), ev.Time.Sub(now).Round(time.Second), MaxAhead)
	}
	lateness := rules.MaxLateness
	if lateness <= 0 {
		lateness = DefaultMaxLateness
	}
	if now.Sub(ev.Time) > lateness {
		return nil, reject(ReasonTooLate, "time %s is older than the maximum lateness %s",
			ev.Time.Format(time.RFC3339Nano), lateness)
	}
	return ev, nil
}

// present returns an attribute's value, or false when it is absent or JSON
// null: CloudEvents' JSON format gives null the meaning of unset.
func present(env object, key string) (jsontext.Value, bool) {
	v, ok := env.get(key)
	return v, ok && v.Kind() != 'n'
}

// jsonMediaType reports whether s names application/json, in any case, with
// or without parameters.
func jsonMediaType(s string) bool {
	mt, _, err := mime.ParseMediaType(s)
	return err == nil && mt == "application/json"
}

func decodeData(eventType string, d object) (any, *Rejection) {
	f := fields{d: d}
	switch eventType {
	case TypeServiceRegistered:
		v := &ServiceRegistered{
			Service:  f.token("service", tokenRE),
			Name:     f.optString("name"),
			Area:     f.token("area", tokenRE),
			Delivery: f.enum("delivery", DeliveryConcession, DeliveryOwn),
			ReportingIntervalSeconds: f.optInt("reporting_interval_seconds",
				DefaultReportingIntervalSeconds, 60, 604800),
			OpenData: f.optBool("open_data"),
		}
		if f.rej != nil {
			return nil, f.rej
		}
		if v.Name == "" {
			v.Name = v.Service
		}
		switch v.Delivery {
		case DeliveryConcession:
			v.Provider = f.token("provider", slugRE)
			if f.rej == nil && v.Provider == Council {
				f.fail(ReasonInvalidField, "provider of a concession service must be an external organisation, not %q", Council)
			}
		case DeliveryOwn:
			_, given := f.get("provider", false)
			v.Provider = f.optString("provider")
			if f.rej == nil && given && v.Provider != Council {
				f.fail(ReasonInvalidField, "provider of an own service must be %q or absent, not %q", Council, v.Provider)
			}
			v.Provider = Council
		}
		return v, f.rej
	case TypeServiceRetired:
		v := &ServiceRetired{Service: f.token("service", tokenRE)}
		return v, f.rej
	case TypeSLADefined:
		v := &SLADefined{
			Service:   f.token("service", tokenRE),
			KPI:       f.token("kpi", tokenRE),
			Name:      f.optString("name"),
			Unit:      f.optString("unit"),
			Direction: f.enum("direction", HigherIsBetter, LowerIsBetter),
			Target:    f.number("target"),
			Objective: f.number("objective"),
		}
		if f.rej == nil && !(v.Objective > 0 && v.Objective <= 1) {
			f.fail(ReasonInvalidField, "objective must be greater than 0 and at most 1, got %v", v.Objective)
		}
		return v, f.rej
	case TypeKPIMeasured:
		v := &KPIMeasured{
			Service: f.token("service", tokenRE),
			KPI:     f.token("kpi", tokenRE),
			Value:   f.number("value"),
		}
		return v, f.rej
	case TypeIncidentOpened:
		v := &IncidentOpened{
			Service:                 f.token("service", tokenRE),
			Incident:                f.token("incident", tokenRE),
			Priority:                f.enum("priority", Priorities...),
			ResolutionTargetSeconds: f.integer("resolution_target_seconds", 60, 31536000),
		}
		return v, f.rej
	case TypeIncidentResolved:
		v := &IncidentResolved{
			Service:  f.token("service", tokenRE),
			Incident: f.token("incident", tokenRE),
		}
		return v, f.rej
	}
	return nil, reject(ReasonUnknownType, "type %q is not a contract v1 event type", eventType)
}

// fields reads data fields, keeping the first problem found.
type fields struct {
	d   object
	rej *Rejection
}

func (f *fields) fail(r Reason, format string, args ...any) {
	if f.rej == nil {
		f.rej = reject(r, format, args...)
	}
}

// get returns the field's value, or false when absent or null.
func (f *fields) get(key string, required bool) (jsontext.Value, bool) {
	if f.rej != nil {
		return nil, false
	}
	v, ok := f.d.get(key)
	if !ok || v.Kind() == 'n' {
		if required {
			f.fail(ReasonMissingField, "data field %q is missing", key)
		}
		return nil, false
	}
	return v, true
}

func (f *fields) str(key string, required bool) string {
	v, ok := f.get(key, required)
	if !ok {
		return ""
	}
	s, ok := str(v)
	if !ok {
		f.fail(ReasonInvalidField, "data field %q must be a string, got %s", key, short(v))
	}
	return s
}

func (f *fields) optString(key string) string { return f.str(key, false) }

func (f *fields) token(key string, pattern namePattern) string {
	s := f.str(key, true)
	if f.rej == nil && !pattern.MatchString(s) {
		f.fail(ReasonInvalidField, "data field %q is %q; it must match %s", key, s, pattern)
	}
	return s
}

func (f *fields) enum(key string, allowed ...string) string {
	s := f.str(key, true)
	if f.rej != nil {
		return s
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	f.fail(ReasonInvalidField, "data field %q is %q; it must be one of %s", key, s, strings.Join(allowed, ", "))
	return s
}

func (f *fields) optBool(key string) bool {
	v, ok := f.get(key, false)
	if !ok {
		return false
	}
	switch v.Kind() {
	case 't':
		return true
	case 'f':
		return false
	}
	f.fail(ReasonInvalidField, "data field %q must be true or false, got %s", key, short(v))
	return false
}

// number reads a required finite number. A JSON number too large for a
// float64, or a string spelling NaN or infinity, is non_finite_value.
func (f *fields) number(key string) float64 {
	v, ok := f.get(key, true)
	if !ok {
		return 0
	}
	switch v.Kind() {
	case '0':
		x, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(x, 0) || math.IsNaN(x) {
			f.fail(ReasonNonFiniteValue, "data field %q is %s, which is not a finite number", key, short(v))
			return 0
		}
		return x
	case '"':
		s, _ := str(v)
		if nonFiniteWord(s) {
			f.fail(ReasonNonFiniteValue, "data field %q is %q; it must be a finite number", key, s)
			return 0
		}
	}
	f.fail(ReasonInvalidField, "data field %q must be a number, got %s", key, short(v))
	return 0
}

func (f *fields) integer(key string, lo, hi int64) int64 {
	x := f.number(key)
	if f.rej != nil {
		return 0
	}
	if x != math.Trunc(x) || x < float64(lo) || x > float64(hi) {
		f.fail(ReasonInvalidField, "data field %q is %v; it must be a whole number from %d to %d", key, x, lo, hi)
		return 0
	}
	return int64(x)
}

func (f *fields) optInt(key string, def, lo, hi int64) int64 {
	if f.rej != nil {
		return 0
	}
	if v, ok := f.d.get(key); !ok || v.Kind() == 'n' {
		return def
	}
	return f.integer(key, lo, hi)
}

func nonFiniteWord(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity":
		return true
	}
	return false
}

func envString(env object, key string) (string, *Rejection) {
	v, _ := env.get(key)
	s, ok := str(v)
	if !ok {
		return "", reject(ReasonInvalidField, "attribute %q must be a string, got %s", key, short(v))
	}
	if s == "" {
		return "", reject(ReasonInvalidField, "attribute %q is empty", key)
	}
	return s, nil
}

// str reads a JSON string. Most strings have no escape: their bytes
// between the quotes, when printable ASCII, are the string (a fifth of the
// time of decoding an event went to decoding them in full).
func str(v jsontext.Value) (string, bool) {
	if v.Kind() != '"' {
		return "", false
	}
	if n := len(v); n >= 2 && v[n-1] == '"' {
		inner := v[1 : n-1]
		plain := true
		for _, c := range inner {
			if c < 0x20 || c > 0x7e || c == '\\' || c == '"' {
				plain = false
				break
			}
		}
		if plain {
			return string(inner), true
		}
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validURIRef is a lenient RFC 3986 URI-reference check: printable ASCII
// with no spaces and no characters that a URI never contains.
func validURIRef(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`"<>\^`+"`{|}", c) >= 0 {
			return false
		}
	}
	return true
}

// KindName is the name of a JSON value's kind as rejection details say
// it: object, array, string, number, boolean, null.
func KindName(k jsontext.Kind) string {
	switch k {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "value"
}

// describe says what a JSON value is, for a message: its kind, and for a
// string its length.
func describe(v jsontext.Value) string {
	if s, ok := str(v); ok {
		return fmt.Sprintf("a string of %d characters", utf8.RuneCountInString(s))
	}
	return "a JSON " + KindName(v.Kind())
}

// short renders a JSON value for a message, cut to a readable length.
func short(v jsontext.Value) string {
	b := bytes.TrimSpace(v)
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

func cleanErr(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "json: ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
