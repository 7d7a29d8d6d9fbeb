package contract

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzDecode checks that decoding never panics, that every outcome is either
// an event or a rejection with a reason of the closed set, and that accepted
// events survive a marshal/decode round trip.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seeds", "*.json"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("smartcity.sabadell.fcc-medi-ambient.measurement", b)
		f.Add("smartcity.sabadell.council.catalog", b)
	}
	known := map[Reason]bool{}
	for _, r := range Reasons {
		known[r] = true
	}
	r := Rules{Now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, subject string, msg []byte) {
		ev, rej := Decode(subject, msg, r)
		if (ev == nil) == (rej == nil) {
			t.Fatalf("want exactly one of event and rejection, got %v and %v", ev, rej)
		}
		if rej != nil {
			if !known[rej.Reason] || rej.Message == "" {
				t.Fatalf("bad rejection %+v", rej)
			}
			return
		}
		b, err := Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, rej := Decode(subject, b, r); rej != nil && rej.Reason != ReasonTooLarge {
			t.Fatalf("re-encoded event rejected: %v\n%s", rej, b)
		}
	})
}

// FuzzDecodeMessage checks DecodeMessage the same way for messages with
// headers, in either content mode: never a panic, exactly one outcome, a
// reason of the closed set; an accepted event survives a marshal/decode
// round trip in structured mode and in binary mode; and a message without
// ce-specversion gets exactly Decode's verdict. The headers are given as
// lines "name:value", a name repeated for several values.
func FuzzDecodeMessage(f *testing.F) {
	for _, typ := range Types {
		env, subj := valid(typ)
		h, body, _ := toBinary(f, env)
		f.Add(subj, headerLines(h), body)
		f.Add(subj, "Content-Type:application/cloudevents+json\nce-specversion:1.0\nce-id:x", encode(f, env))
	}
	env, subj := valid(TypeKPIMeasured)
	h, body, _ := toBinary(f, env)
	for _, extra := range []string{
		"ce-id:\"evt%201\"", "CE-ID:again", "ce-id:50%-done", "ce-source:urn:%C0%A0", "Content-Type:application/json; charset=utf-8",
		"Content-Type:text/plain", "ce-datacontenttype:application/json\nContent-Type:application/json", "ce-time:2026-11-20T11:00:00,5+01:00",
		"ce-data:{}", "ce-data_base64:AAAA", "ce-specversion:0.3", "Nats-Msg-Id:evt-1",
	} {
		f.Add(subj, headerLines(h)+"\n"+extra, body)
	}
	f.Add(subj, headerLines(h), []byte(nil))
	f.Add(subj, headerLines(h), []byte(`[1]`))
	f.Add(subj, headerLines(h), encode(f, env))
	f.Add(subj, "", encode(f, env))
	known := map[Reason]bool{}
	for _, r := range Reasons {
		known[r] = true
	}
	r := Rules{Now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, subject, lines string, body []byte) {
		header := map[string][]string{}
		for _, l := range strings.Split(lines, "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				header[k] = append(header[k], v)
			}
		}
		ev, rej := DecodeMessage(subject, header, body, r)
		if (ev == nil) == (rej == nil) {
			t.Fatalf("want exactly one of event and rejection, got %v and %v", ev, rej)
		}
		binary := false
		for k := range header {
			binary = binary || strings.EqualFold(k, "ce-specversion")
		}
		if !binary {
			ev2, rej2 := Decode(subject, body, r)
			if (rej == nil) != (rej2 == nil) || (rej != nil && *rej != *rej2) || (ev != nil && !sameEvent(ev, ev2)) {
				t.Fatalf("without ce-specversion: %v %+v, Decode: %v %+v", rej, ev, rej2, ev2)
			}
		}
		if rej != nil {
			if !known[rej.Reason] || rej.Message == "" {
				t.Fatalf("bad rejection %+v", rej)
			}
			return
		}
		b, err := Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if again, rej := Decode(subject, b, r); rej != nil && rej.Reason != ReasonTooLarge {
			t.Fatalf("re-encoded event rejected: %v\n%s", rej, b)
		} else if rej == nil && !sameEvent(again, ev) {
			t.Fatalf("structured round trip: %+v, was %+v", again, ev)
		}
		var env map[string]any
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		h, data, _ := toBinary(t, env)
		if again, rej := DecodeMessage(subject, h, data, r); rej != nil && rej.Reason != ReasonTooLarge {
			t.Fatalf("event re-encoded in binary mode rejected: %v\n%v %s", rej, h, data)
		} else if rej == nil && !sameEvent(again, ev) {
			t.Fatalf("binary round trip: %+v, was %+v", again, ev)
		}
	})
}

func headerLines(h map[string][]string) string {
	var lines []string
	for k, vs := range h {
		for _, v := range vs {
			lines = append(lines, k+":"+v)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
