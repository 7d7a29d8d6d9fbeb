package service_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/assoliment/assoliment/services/contract"
)

// The contract's JSON Schemas are served without a token: all by type, and
// each alone.
func TestSchemasServed(t *testing.T) {
	e := start(t)
	req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/schemas", nil)
	a := do(t, req)
	var all map[string]json.RawMessage
	a.decode(t, &all)
	if a.code != 200 || len(all) != len(contract.Types) {
		t.Fatalf("%d, %d schemas", a.code, len(all))
	}
	want := contract.Schemas()
	for _, typ := range contract.Types {
		var got, exp any
		if json.Unmarshal(all[typ], &got) != nil || json.Unmarshal(want[typ], &exp) != nil || !jsonEqual(got, exp) {
			t.Errorf("schema of %s differs from the contract's", typ)
		}
		req, _ := http.NewRequest(http.MethodGet, e.url+"/api/v1/schemas/"+typ+".json", nil)
		one := do(t, req)
		if one.code != 200 || !bytes.Equal(one.body, want[typ]) || one.header.Get("Content-Type") != "application/schema+json" {
			t.Errorf("GET schema %s: %d %s", typ, one.code, one.header.Get("Content-Type"))
		}
	}
	req, _ = http.NewRequest(http.MethodGet, e.url+"/api/v1/schemas/cat.smartcity.nothing.v1", nil)
	do(t, req).problem(t, 404, "not_found")
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
