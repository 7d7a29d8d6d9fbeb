package deploytest

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
)

// repoRoot is the repository root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source file")
	}
	root, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "docker-compose.yml")); err != nil {
		t.Fatalf("repository root %s has no docker-compose.yml: %v", root, err)
	}
	return root
}

// repoPath joins parts onto the repository root.
func repoPath(t *testing.T, parts ...string) string {
	t.Helper()
	return filepath.Join(append([]string{repoRoot(t)}, parts...)...)
}

// globRepo returns the sorted files matching pattern under the repository
// root and fails when there are none.
func globRepo(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(repoPath(t, pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no files match %s", pattern)
	}
	sort.Strings(files)
	return files
}

// rel makes path relative to the repository root for messages.
func rel(t *testing.T, path string) string {
	t.Helper()
	r, err := filepath.Rel(repoRoot(t), path)
	if err != nil {
		return path
	}
	return r
}
