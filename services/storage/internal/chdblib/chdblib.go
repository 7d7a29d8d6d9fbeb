// Package chdblib points chdb-go at the libchdb.so that scripts/chdb.sh
// installs under .data/chdb. chdb-go loads the library when its package is
// initialised, panicking when it is missing; importing this package next
// to it sets CHDB_LIB_PATH first (packages initialise in the order of
// their import paths, github.com/assoliment before github.com/chdb-io, and
// this one needs nothing chdb-go does not need itself), and fails with a
// message that says how to install it.
package chdblib

import (
	"os"
	"path/filepath"
)

// Rel is where scripts/chdb.sh installs the library, from the repository's
// root.
const Rel = ".data/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so"

func init() {
	if os.Getenv("CHDB_LIB_PATH") != "" {
		return
	}
	dir, err := os.Getwd()
	if err != nil {
		panic("chdblib: " + err.Error())
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			panic("chdblib: no go.work above the working directory; set CHDB_LIB_PATH to libchdb.so")
		}
		dir = parent
	}
	lib := filepath.Join(dir, Rel)
	if _, err := os.Stat(lib); err != nil {
		panic("chdblib: " + lib + " is missing: run `make deps` (or scripts/chdb.sh), which installs the npm package @chdb/lib-linux-x64-gnu")
	}
	_ = os.Setenv("CHDB_LIB_PATH", lib)
}
