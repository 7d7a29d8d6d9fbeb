package contract

import (
	"embed"
	"io/fs"
	"strings"
)

// schemaFiles are the JSON Schemas (draft 2020-12) of the inbound event
// types, one file per type named <type>.json. They are generated from this
// package by its tests (go test -run TestSchemasUpToDate -update), which
// also keep the copies in docs/schemas identical.
//
//go:embed schemas/*.json
var schemaFiles embed.FS

// SchemaFS returns the JSON Schemas of the inbound event types as files
// named <type>.json (cat.smartcity.kpi.measured.v1.json…), ready for
// http.FileServerFS. Each describes a structured-mode event; its
// "#/$defs/data" describes the data alone, which is the body in binary mode.
func SchemaFS() fs.FS {
	sub, err := fs.Sub(schemaFiles, "schemas")
	if err != nil {
		panic(err) // the directory is embedded
	}
	return sub
}

// Schemas returns the JSON Schema of every inbound event type, by type.
func Schemas() map[string][]byte {
	out := make(map[string][]byte, len(Types))
	entries, _ := fs.ReadDir(schemaFiles, "schemas")
	for _, e := range entries {
		b, err := fs.ReadFile(schemaFiles, "schemas/"+e.Name())
		if err != nil {
			panic(err) // embedded
		}
		out[strings.TrimSuffix(e.Name(), ".json")] = b
	}
	return out
}
