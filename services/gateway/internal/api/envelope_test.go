package api

import (
	"bytes"
	"net/http"
	"testing"
)

func TestSplitBatchKeepsEachEventsBytes(t *testing.T) {
	body := []byte("[ {\"a\" : 1,\n \"b\":[2]} ,\"x\",\t{\"a\":1,\"a\":2}, {\"s\":\"\xff\"} ]\n")
	items, p := splitBatch(body, 10)
	if p != nil {
		t.Fatal(p)
	}
	want := []string{"{\"a\" : 1,\n \"b\":[2]}", `"x"`, `{"a":1,"a":2}`, "{\"s\":\"\xff\"}"}
	if len(items) != len(want) {
		t.Fatalf("%q", items)
	}
	for i := range want {
		if !bytes.Equal(items[i], []byte(want[i])) {
			t.Errorf("item %d = %q, want %q", i, items[i], want[i])
		}
	}
}

func TestSplitBatchWholeRequestProblems(t *testing.T) {
	for in, reason := range map[string]string{
		``:                 "malformed_json",
		`{"a":1}`:          "not_a_batch",
		`"text"`:           "not_a_batch",
		`[1,2,3,4]`:        "too_many_events",
		`[1,2`:             "malformed_json",
		`[1,2] x`:          "malformed_json",
		`[1,2][3]`:         "malformed_json",
		`[1,,2]`:           "malformed_json",
		`[{"a":1}, {"b"}]`: "malformed_json",
	} {
		_, p := splitBatch([]byte(in), 3)
		if p == nil || p.Reason != reason || p.Detail == "" {
			t.Errorf("splitBatch(%q) = %+v, want %s", in, p, reason)
		}
	}
}

func TestSubjectFromTheEnvelope(t *testing.T) {
	for raw, want := range map[string]string{
		`{"municipality":"sabadell","publisher":"council","type":"cat.smartcity.sla.defined.v1"}`: "smartcity.sabadell.council.catalog",
		`{"municipality":"Sabadell","publisher":7,"type":"cat.x"}`:                                "smartcity.unknown.unknown.measurement",
		`not json`: "smartcity.unknown.unknown.measurement",
	} {
		if got := subjectOf([]byte(raw)); got != want {
			t.Errorf("subjectOf(%s) = %s, want %s", raw, got, want)
		}
	}
	h := http.Header{}
	h.Set("ce-municipality", `"sabadel%6C"`)
	h.Set("ce-publisher", "fcc-medi-ambient")
	h.Set("ce-type", "cat.smartcity.incident.opened.v1")
	if got := binarySubject(h); got != "smartcity.sabadell.fcc-medi-ambient.incident" {
		t.Errorf("binarySubject = %s", got)
	}
}

func TestModeOf(t *testing.T) {
	for _, c := range []struct{ ct, ce, want string }{
		{"application/cloudevents+json", "", "structured"},
		{"Application/CloudEvents+JSON; charset=utf-8", "1.0", "structured"},
		{"application/cloudevents-batch+json", "", "batch"},
		{"application/json", "1.0", "binary"},
		{"", "1.0", "binary"},
		{"application/json", "", "none"},
		{"text/plain", "", "none"},
	} {
		h := http.Header{}
		if c.ct != "" {
			h.Set("Content-Type", c.ct)
		}
		if c.ce != "" {
			h.Set("Ce-Specversion", c.ce)
		}
		if got := modeOf(h); got != c.want {
			t.Errorf("modeOf(%q, ce-specversion %q) = %s, want %s", c.ct, c.ce, got, c.want)
		}
	}
}
