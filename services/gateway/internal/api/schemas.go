package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/assoliment/assoliment/services/contract"
)

// Schemas serves the contract's JSON Schemas, which need no token: every
// one by event type at GET /api/v1/schemas, and each alone at
// GET /api/v1/schemas/{type} (with or without ".json").
func Schemas() (all, one http.Handler) {
	schemas := contract.Schemas()
	index := make(map[string]json.RawMessage, len(schemas))
	for t, s := range schemas {
		index[t] = s
	}
	body, err := json.Marshal(index)
	if err != nil {
		panic(fmt.Sprintf("contract schemas are not JSON: %v", err)) // embedded, and tested in the contract
	}
	all = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	one = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimSuffix(r.PathValue("type"), ".json")
		s, ok := schemas[name]
		if !ok {
			x := &exchange{w: w, r: r}
			x.problem(http.StatusNotFound, ReasonNotFound, "no schema for type %q; GET /api/v1/schemas lists them all (%s)",
				name, strings.Join(contract.Types, ", "))
			return
		}
		w.Header().Set("Content-Type", "application/schema+json")
		_, _ = w.Write(s)
	})
	return all, one
}
