package contract

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// toBinary renders a structured-mode envelope in binary content mode: every
// attribute but data as a ce- header, data as the body. It reports false
// when the envelope holds an attribute that is not a string, which binary
// mode cannot carry.
func toBinary(t testing.TB, env map[string]any) (map[string][]string, []byte, bool) {
	t.Helper()
	h := map[string][]string{}
	var body []byte
	for k, v := range env {
		if k == "data_base64" {
			return nil, nil, false // structured mode only
		}
		if k == "data" {
			if v != nil {
				body = encode(t, v)
			}
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, nil, false
		}
		h["ce-"+k] = []string{percentEncode(s)}
	}
	return h, body, true
}

// percentEncode encodes a header value as the CloudEvents bindings say:
// space, double quote, percent and every byte outside printable ASCII.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == '%' || c > '~' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func sameEvent(a, b *Event) bool {
	return a.ID == b.ID && a.Source == b.Source && a.Type == b.Type && a.Time.Equal(b.Time) &&
		a.Municipality == b.Municipality && a.Publisher == b.Publisher && a.DataContentType == b.DataContentType &&
		string(mustJSON(a.Data)) == string(mustJSON(b.Data))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestDecodeMessageSameVerdictBothModes sends every case of the structured
// tables again in binary mode, wherever binary mode can carry it (string
// attributes only), and wants the same verdict: the same event, or the same
// reason.
func TestDecodeMessageSameVerdictBothModes(t *testing.T) {
	type tc struct {
		name   string
		typ    string
		edit   func(map[string]any, *string)
		reason Reason // "" when accepted
	}
	var cases []tc
	for _, typ := range Types {
		cases = append(cases, tc{name: "valid " + typ, typ: typ, edit: func(map[string]any, *string) {}})
	}
	for _, c := range rejectionCases() {
		if c.raw == nil {
			cases = append(cases, tc{c.name, c.typ, c.edit, c.reason})
		}
	}
	for _, c := range acceptCases() {
		cases = append(cases, tc{name: c.name, typ: c.typ, edit: c.edit})
	}
	compared := 0
	for _, c := range cases {
		env, subj := valid(c.typ)
		c.edit(env, &subj)
		h, body, ok := toBinary(t, env)
		if !ok {
			continue
		}
		compared++
		t.Run(c.name, func(t *testing.T) {
			want, wantRej := Decode(subj, encode(t, env), rules())
			if (wantRej == nil) != (c.reason == "") || (wantRej != nil && wantRej.Reason != c.reason) {
				t.Fatalf("structured: %v, table says %q", wantRej, c.reason)
			}
			got, rej := DecodeMessage(subj, h, body, rules())
			switch {
			case wantRej != nil && rej == nil:
				t.Fatalf("binary accepted %+v, structured %s (%s)", got, wantRej.Reason, wantRej.Message)
			case wantRej != nil && rej.Reason != wantRej.Reason:
				t.Fatalf("binary %s (%s), structured %s (%s)", rej.Reason, rej.Message, wantRej.Reason, wantRej.Message)
			case wantRej == nil && rej != nil:
				t.Fatalf("binary rejected: %v", rej)
			case wantRej == nil && !sameEvent(got, want):
				t.Fatalf("binary %+v, structured %+v", got, want)
			}
		})
	}
	if compared < 100 {
		t.Fatalf("only %d cases compared", compared)
	}
}

func binaryMeasurement(t *testing.T) (map[string][]string, []byte, string) {
	t.Helper()
	env, subj := valid(TypeKPIMeasured)
	h, body, _ := toBinary(t, env)
	return h, body, subj
}

func TestDecodeMessageBinary(t *testing.T) {
	edit := func(f func(h map[string][]string, body *[]byte)) func(*testing.T) (map[string][]string, []byte, string) {
		return func(t *testing.T) (map[string][]string, []byte, string) {
			h, body, subj := binaryMeasurement(t)
			f(h, &body)
			return h, body, subj
		}
	}
	set := func(k, v string) func(map[string][]string, *[]byte) {
		return func(h map[string][]string, _ *[]byte) { h[k] = []string{v} }
	}
	rename := func(from, to string) func(map[string][]string, *[]byte) {
		return func(h map[string][]string, _ *[]byte) { h[to] = h[from]; delete(h, from) }
	}
	cases := []struct {
		name   string
		msg    func(*testing.T) (map[string][]string, []byte, string)
		reason Reason // "" when accepted
		detail string // part of the rejection's message
	}{
		{name: "header names in any case", msg: edit(func(h map[string][]string, _ *[]byte) {
			for k, v := range h {
				delete(h, k)
				h[strings.ToUpper(k[:4])+k[4:]] = v
			}
		})},
		{name: "http canonical header names", msg: edit(func(h map[string][]string, _ *[]byte) {
			hh := http.Header{}
			for k, v := range h {
				hh.Set(k, v[0])
				delete(h, k)
			}
			for k, v := range hh {
				h[k] = v
			}
		})},
		{name: "datacontenttype as ce- header", msg: edit(set("ce-datacontenttype", "application/json"))},
		{name: "datacontenttype as Content-Type", msg: edit(set("Content-Type", "application/json; charset=utf-8"))},
		{name: "datacontenttype both, agreeing", msg: edit(func(h map[string][]string, _ *[]byte) {
			h["ce-datacontenttype"] = []string{"application/json"}
			h["content-type"] = []string{"Application/JSON;charset=UTF-8"}
		})},
		{name: "datacontenttype both, Content-Type text", reason: ReasonInvalidField, detail: "text/plain", msg: edit(func(h map[string][]string, _ *[]byte) {
			h["ce-datacontenttype"] = []string{"application/json"}
			h["Content-Type"] = []string{"text/plain"}
		})},
		{name: "datacontenttype both, ce- header xml", reason: ReasonInvalidField, detail: "application/xml", msg: edit(func(h map[string][]string, _ *[]byte) {
			h["ce-datacontenttype"] = []string{"application/xml"}
			h["Content-Type"] = []string{"application/json"}
		})},
		{name: "Content-Type text/plain", msg: edit(set("Content-Type", "text/plain")), reason: ReasonInvalidField},
		{name: "Content-Type twice", msg: edit(func(h map[string][]string, _ *[]byte) {
			h["Content-Type"] = []string{"application/json"}
			h["content-type"] = []string{"application/json"}
		}), reason: ReasonMalformedJSON, detail: "Content-Type"},
		{name: "Content-Type not UTF-8", msg: edit(set("Content-Type", "application/json; x=\xff")), reason: ReasonMalformedJSON},
		{name: "percent-encoded values", msg: edit(func(h map[string][]string, _ *[]byte) {
			h["ce-id"] = []string{"evt%201%25"}
			h["ce-source"] = []string{"urn%3aprovider%3Afcc-medi-ambient"}
		})},
		{name: "quoted value", msg: edit(set("ce-id", `"evt \"1\""`))},
		{name: "surrounding white space", msg: edit(set("ce-time", " \t2026-11-20T11:00:00+01:00 "))},
		{name: "bad percent-encoding", msg: edit(set("ce-id", "50%-done")), reason: ReasonMalformedJSON, detail: "percent"},
		{name: "overlong UTF-8", msg: edit(set("ce-source", "urn:a%C0%A0b")), reason: ReasonMalformedJSON, detail: "UTF-8"},
		{name: "raw invalid UTF-8", msg: edit(set("ce-source", "urn:\xff")), reason: ReasonMalformedJSON, detail: "UTF-8"},
		{name: "unterminated quoting", msg: edit(set("ce-id", `"a\"`)), reason: ReasonMalformedJSON, detail: "backslash"},
		{name: "inner quote", msg: edit(set("ce-id", `"a"b"`)), reason: ReasonMalformedJSON, detail: "double quote"},
		{name: "header given twice", msg: edit(func(h map[string][]string, _ *[]byte) {
			h["ce-id"] = []string{"a", "b"}
		}), reason: ReasonMalformedJSON, detail: "2 times"},
		{name: "header given in two cases", msg: edit(set("CE-ID", "other")), reason: ReasonMalformedJSON, detail: `attribute "id"`},
		{name: "unknown ce- header given twice", msg: edit(func(h map[string][]string, _ *[]byte) {
			h["ce-traceparent"] = []string{"a", "b"}
		}), reason: ReasonMalformedJSON},
		{name: "unknown ce- header ignored", msg: edit(set("ce-traceparent", "00-abc"))},
		{name: "ce-data header ignored, body is data", msg: edit(set("ce-data", `{"value":"x"}`))},
		{name: "ce-data_base64 header ignored", msg: edit(set("ce-data_base64", "AAAA"))},
		{name: "no ce-time", msg: edit(func(h map[string][]string, _ *[]byte) { delete(h, "ce-time") }), reason: ReasonMissingField},
		{name: "ce-specversion 0.3", msg: edit(set("ce-specversion", "0.3")), reason: ReasonUnsupportedSpecVersion},
		{name: "ce-specversion empty", msg: edit(set("ce-specversion", "")), reason: ReasonUnsupportedSpecVersion},
		{name: "ce-specversion without value is no header", msg: edit(func(h map[string][]string, _ *[]byte) {
			h["ce-specversion"] = nil
		}), reason: ReasonNotCloudEvent},
		{name: "empty body", msg: edit(func(_ map[string][]string, b *[]byte) { *b = nil }), reason: ReasonMissingField, detail: "body"},
		{name: "body null", msg: edit(func(_ map[string][]string, b *[]byte) { *b = []byte("null") }), reason: ReasonMissingField},
		{name: "body not JSON", msg: edit(func(_ map[string][]string, b *[]byte) { *b = []byte("value=1") }), reason: ReasonMalformedJSON, detail: "body"},
		{name: "body with duplicate keys", msg: edit(func(_ map[string][]string, b *[]byte) {
			*b = []byte(`{"service":"a","kpi":"b","value":1,"value":2}`)
		}), reason: ReasonMalformedJSON},
		{name: "body an array", msg: edit(func(_ map[string][]string, b *[]byte) { *b = []byte("[1]") }), reason: ReasonInvalidField},
		{name: "body a structured event", reason: ReasonMissingField, detail: "application/cloudevents+json", msg: func(t *testing.T) (map[string][]string, []byte, string) {
			h, _, subj := binaryMeasurement(t)
			env, _ := valid(TypeKPIMeasured)
			return h, encode(t, env), subj
		}},
		{name: "time with comma fraction", msg: edit(set("ce-time", "2026-11-20T11:00:00,5+01:00")), reason: ReasonInvalidField},
		{name: "time with nanoseconds", msg: edit(set("ce-time", "2026-11-20T11:00:00.123456789+01:00"))},
		{name: "publisher header differs from subject", msg: edit(set("ce-publisher", "other")), reason: ReasonSubjectMismatch},
		{name: "no ce-publisher", msg: edit(rename("ce-publisher", "publisher")), reason: ReasonMissingField},
		{name: "value NaN string", msg: edit(func(_ map[string][]string, b *[]byte) {
			*b = []byte(`{"service":"a","kpi":"b","value":"NaN"}`)
		}), reason: ReasonNonFiniteValue},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, body, subj := c.msg(t)
			ev, rej := DecodeMessage(subj, h, body, rules())
			switch {
			case c.reason == "" && rej != nil:
				t.Fatalf("rejected: %v", rej)
			case c.reason != "" && rej == nil:
				t.Fatalf("accepted %+v, want %s", ev, c.reason)
			case c.reason != "" && (rej.Reason != c.reason || !strings.Contains(rej.Message, c.detail)):
				t.Fatalf("%s (%s), want %s with %q", rej.Reason, rej.Message, c.reason, c.detail)
			}
		})
	}
}

func TestDecodeMessageDecodedValues(t *testing.T) {
	h, body, subj := binaryMeasurement(t)
	h["ce-id"] = []string{`"evt%201"`}
	h["Content-Type"] = []string{"application/json; charset=utf-8"}
	h["ce-time"] = []string{"2026-11-20T11:00:00.123456789+01:00"}
	ev, rej := DecodeMessage(subj, h, body, rules())
	if rej != nil {
		t.Fatal(rej)
	}
	if ev.ID != "evt 1" || ev.DataContentType != "application/json; charset=utf-8" ||
		!ev.Time.Equal(time.Date(2026, 11, 20, 10, 0, 0, 123456789, time.UTC)) {
		t.Fatalf("%+v", ev)
	}
	if m := ev.Data.(*KPIMeasured); m.Value != 0.991 || m.Service != "waste-collection" {
		t.Fatalf("%+v", m)
	}
}

// TestDecodeMessageModes checks which content mode wins: a CloudEvents
// Content-Type makes the body the whole event whatever ce- headers come
// with it, and without one a ce-specversion header makes the body the data.
func TestDecodeMessageModes(t *testing.T) {
	env, subj := valid(TypeKPIMeasured)
	structured := encode(t, env)
	h, data, _ := toBinary(t, env)

	// Structured body with a CloudEvents Content-Type and conflicting ce-
	// headers: the body is the event.
	hs := map[string][]string{"Content-Type": {"application/cloudevents+json; charset=UTF-8"}, "ce-specversion": {"1.0"},
		"ce-id": {"other-id"}, "ce-publisher": {"someone-else"}}
	ev, rej := DecodeMessage(subj, hs, structured, rules())
	if rej != nil || ev.ID != "evt-1" || ev.Publisher != "fcc-medi-ambient" {
		t.Fatalf("structured with ce- headers: %v %+v", rej, ev)
	}
	// The same Content-Type with a data-only body: the body is still read
	// as the event, and refused.
	for k, v := range h {
		hs[k] = v
	}
	if _, rej := DecodeMessage(subj, hs, data, rules()); rej == nil || rej.Reason != ReasonNotCloudEvent {
		t.Fatalf("cloudevents Content-Type with a data body: %v", rej)
	}
	// Other CloudEvents media types are structured too.
	if _, rej := DecodeMessage(subj, map[string][]string{"content-type": {"APPLICATION/CLOUDEVENTS-BATCH+JSON"}, "ce-specversion": {"1.0"}},
		structured, rules()); rej != nil {
		t.Fatalf("batch media type: %v", rej)
	}
	// No headers at all, or headers without ce-specversion: structured.
	for _, hh := range []map[string][]string{nil, {}, {"Content-Type": {"application/json"}, "ce-id": {"x"}}} {
		if _, rej := DecodeMessage(subj, hh, structured, rules()); rej != nil {
			t.Fatalf("headers %v: %v", hh, rej)
		}
	}
	// Binary mode: the body is the data.
	if _, rej := DecodeMessage(subj, h, data, rules()); rej != nil {
		t.Fatalf("binary: %v", rej)
	}
}

func TestDecodeMessageSizeLimit(t *testing.T) {
	h, body, subj := binaryMeasurement(t)
	headers := 0
	for k, v := range h {
		headers += len(k) + len(v[0])
	}
	h["Content-Type"] = []string{"application/json"}
	headers += len("Content-Type") + len("application/json")
	// Pad the body with white space inside the object to reach the limit.
	pad := func(n int) []byte {
		b := append([]byte{}, body[:len(body)-1]...)
		b = append(b, strings.Repeat(" ", n)...)
		return append(b, '}')
	}
	exact := pad(MaxMessageSize - headers - len(body))
	if _, rej := DecodeMessage(subj, h, exact, rules()); rej != nil {
		t.Fatalf("64 KiB exactly rejected: %v", rej)
	}
	if _, rej := DecodeMessage(subj, h, pad(MaxMessageSize-headers-len(body)+1), rules()); rej == nil || rej.Reason != ReasonTooLarge {
		t.Fatalf("64 KiB + 1 not too_large: %v", rej)
	}
	// Headers count, also unknown ce- ones.
	h["ce-padding"] = []string{strings.Repeat("x", MaxMessageSize)}
	if _, rej := DecodeMessage(subj, h, body, rules()); rej == nil || rej.Reason != ReasonTooLarge {
		t.Fatalf("large ce- header not too_large: %v", rej)
	}
	// Other headers do not.
	delete(h, "ce-padding")
	h["X-Padding"] = []string{strings.Repeat("x", MaxMessageSize)}
	if _, rej := DecodeMessage(subj, h, body, rules()); rej != nil {
		t.Fatalf("large unrelated header: %v", rej)
	}
}

func BenchmarkDecode(b *testing.B) {
	env, subj := valid(TypeKPIMeasured)
	msg := encode(b, env)
	b.ReportAllocs()
	for b.Loop() {
		if _, rej := Decode(subj, msg, rules()); rej != nil {
			b.Fatal(rej)
		}
	}
}

func BenchmarkDecodeMessageBinary(b *testing.B) {
	env, subj := valid(TypeKPIMeasured)
	h, body, _ := toBinary(b, env)
	b.ReportAllocs()
	for b.Loop() {
		if _, rej := DecodeMessage(subj, h, body, rules()); rej != nil {
			b.Fatal(rej)
		}
	}
}
