package service_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// docPath is the gateway's page, whose examples this test runs.
const docPath = "../../../docs/gateway.md"

// example is one command of the page and the output the page shows.
type example struct {
	line    int
	command string
	output  string
	python  bool
}

// TestDocExamples runs every curl command of docs/gateway.md that talks to
// $GATEWAY, and its Python example, exactly as written, against a gateway
// with TOKEN set to a token of fcc-medi-ambient for sabadell and terrassa,
// and requires the output the page shows. The page cannot drift from what
// the gateway does.
func TestDocExamples(t *testing.T) {
	examples := docExamples(t)
	var curls, pythons int
	for _, x := range examples {
		if x.python {
			pythons++
		} else {
			curls++
		}
	}
	if curls < 5 || pythons != 1 {
		t.Fatalf("found %d curl and %d python examples in %s; the page's format changed", curls, pythons, docPath)
	}
	e := start(t)
	env := append(os.Environ(), "GATEWAY="+e.url, "TOKEN="+e.tokens[provider])
	for _, x := range examples {
		var cmd *exec.Cmd
		if x.python {
			file := filepath.Join(t.TempDir(), "example.py")
			if err := os.WriteFile(file, []byte(x.command), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd = exec.Command("python3", file)
		} else {
			cmd = exec.Command("bash", "-c", x.command)
		}
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("%s:%d: %v\n%s\n%s", docPath, x.line, err, x.command, stderr.String())
			continue
		}
		if got := strings.TrimRight(string(out), "\n"); got != x.output {
			t.Errorf("%s:%d: the page shows\n%s\nbut the command prints\n%s", docPath, x.line, x.output, got)
		}
	}
}

// docExamples reads the page: in console blocks, each "$ " command that
// names $GATEWAY (with its continuation lines and here-document) and the
// lines after it; each python block with the text block that follows it.
func docExamples(t *testing.T) []example {
	t.Helper()
	b, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var out []example
	var pendingPython *example
	for i := 0; i < len(lines); i++ {
		lang, ok := strings.CutPrefix(lines[i], "```")
		if !ok || lang == "" {
			continue
		}
		start := i + 1
		end := start
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		block := lines[start:end]
		i = end
		switch lang {
		case "python":
			pendingPython = &example{line: start + 1, command: strings.Join(block, "\n") + "\n", python: true}
		case "text":
			if pendingPython != nil {
				pendingPython.output = strings.Join(block, "\n")
				out = append(out, *pendingPython)
				pendingPython = nil
			}
		case "console":
			out = append(out, consoleExamples(block, start+1)...)
		}
	}
	return out
}

func consoleExamples(block []string, firstLine int) []example {
	var out []example
	for j := 0; j < len(block); {
		if !strings.HasPrefix(block[j], "$ ") {
			j++
			continue
		}
		x := example{line: firstLine + j}
		cmd := []string{strings.TrimPrefix(block[j], "$ ")}
		j++
		for strings.HasSuffix(cmd[len(cmd)-1], `\`) && j < len(block) {
			cmd = append(cmd, block[j])
			j++
		}
		if strings.Contains(strings.Join(cmd, "\n"), "<<EOF") {
			for j < len(block) {
				cmd = append(cmd, block[j])
				j++
				if cmd[len(cmd)-1] == "EOF" {
					break
				}
			}
		}
		var output []string
		for j < len(block) && !strings.HasPrefix(block[j], "$ ") {
			output = append(output, block[j])
			j++
		}
		x.command, x.output = strings.Join(cmd, "\n"), strings.Join(output, "\n")
		if strings.Contains(x.command, "$GATEWAY") {
			out = append(out, x)
		}
	}
	return out
}
