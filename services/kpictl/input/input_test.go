package input

import (
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

const ev = `{"specversion":"1.0","id":"m-1","source":"urn:provider:fcc-medi-ambient","type":"cat.smartcity.kpi.measured.v1","time":"2026-11-20T11:00:00Z","municipality":"sabadell","publisher":"fcc-medi-ambient","data":{"service":"waste-collection","kpi":"k","value":1}}`

func lines(items []Item) []int {
	var out []int
	for _, it := range items {
		out = append(out, it.Line)
	}
	return out
}

func TestFormats(t *testing.T) {
	pretty := "\n\n{\n  \"specversion\": \"1.0\",\n  \"id\": \"x\"\n}\n"
	cases := []struct {
		name, data string
		lines      []int
	}{
		{"jsonl", ev + "\n\n" + ev + "\r\n" + ev, []int{1, 3, 4}},
		{"single pretty object", pretty, []int{3}},
		{"array", "[\n  " + ev + ",\n\n  " + ev + "\n]\n", []int{2, 4}},
		{"empty", "  \n", nil},
	}
	for _, c := range cases {
		got := lines(Parse(c.name, []byte(c.data)))
		if len(got) != len(c.lines) {
			t.Errorf("%s: lines %v, want %v", c.name, got, c.lines)
			continue
		}
		for i := range got {
			if got[i] != c.lines[i] {
				t.Errorf("%s: lines %v, want %v", c.name, got, c.lines)
			}
		}
	}
	items := Parse("a", []byte("[\n"+ev+",\n"+ev+"\n"))
	if len(items) != 3 || items[2].Problem == nil || items[2].Problem.Reason != contract.ReasonMalformedJSON {
		t.Fatalf("broken array: %+v", items)
	}
	if string(items[0].Data) != ev {
		t.Fatalf("array element bytes: %s", items[0].Data)
	}
}

func TestCheckDerivesTheSubject(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	it := Item{File: "f", Line: 1, Data: []byte(ev)}
	subj, e, rej := it.Check(Rules{Rules: contract.Rules{Now: now}})
	if rej != nil || e == nil || subj != "smartcity.sabadell.fcc-medi-ambient.measurement" {
		t.Fatalf("%s %v %v", subj, e, rej)
	}
	_, _, rej = it.Check(Rules{Rules: contract.Rules{Now: now}, Subject: "smartcity.sabadell.other.measurement"})
	if rej == nil || rej.Reason != contract.ReasonSubjectMismatch {
		t.Fatalf("fixed subject: %v", rej)
	}
	if s := Subject([]byte(`{"municipality":"Sabadell","type":"x"}`)); s != "smartcity.unknown.unknown.measurement" {
		t.Fatal(s)
	}
	if ID([]byte(ev)) != "m-1" || ID([]byte(`{"id":5}`)) != "" {
		t.Fatal("ID")
	}
}

func TestReadFileStdin(t *testing.T) {
	items, err := ReadFile(Stdin, strings.NewReader(ev+"\n"+ev+"\n"))
	if err != nil || len(items) != 2 || items[1].Where() != "stdin:2" {
		t.Fatalf("%v %+v", err, items)
	}
	if _, err := ReadFile("testdata/none.jsonl", nil); err == nil {
		t.Fatal("missing file read")
	}
}
