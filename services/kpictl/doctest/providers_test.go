// Package doctest runs the examples of docs/providers.md, taken from the
// markdown itself, against the shipped secure NATS configuration: the
// guide cannot drift from what the platform does.
package doctest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/natsauth"
	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
	"github.com/assoliment/assoliment/services/platform/proc"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

const (
	guide = "../../../docs/providers.md"
	// docServer is the address the guide uses; the test's server replaces it.
	docServer = "tls://nats.example.cat:4222"
	// natsCLI is the nats tool the guide shows.
	natsCLI = "github.com/nats-io/natscli/nats@v0.5.0"
	// firstHour and the sections below it are run; the reference after
	// them only illustrates.
	firstHour = "## Your first hour with NATS"
	reference = "## kpictl\n"
)

// TestProvidersGuide runs, in order and in one folder holding the
// provider's seed file and ca.pem, every console block and the Go program
// of the guide's first hour, and checks each command's exit status and
// the output the guide shows. The example events' day becomes yesterday,
// so that they stay within the platform's time rules whenever the test
// runs.
func TestProvidersGuide(t *testing.T) {
	b, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start, end := strings.Index(doc, firstHour), strings.Index(doc, reference)
	if start < 0 || end < start {
		t.Fatalf("%s no longer has %q followed by %q", guide, firstHour, reference)
	}
	section := doc[start:end]

	s := natsauthtest.Start(t, false)
	js := startIngest(t, s)
	dir := t.TempDir()
	copyFile(t, s.Seed(t, "provider-fcc-medi-ambient"), filepath.Join(dir, "provider-fcc-medi-ambient.nk"))
	copyFile(t, s.Certs.CA, filepath.Join(dir, "ca.pem"))
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format("2006-01-02")
	adapt := func(text string) string {
		text = strings.ReplaceAll(text, docServer, s.ClientURL())
		return strings.ReplaceAll(text, "2026-11-20T", yesterday+"T")
	}
	// readings.jsonl: the guide's three provider examples.
	var readings []string
	for _, block := range blocks(doc, "json") {
		if strings.Contains(block, `"publisher": "fcc-medi-ambient"`) {
			var compact bytes.Buffer
			if err := json.Compact(&compact, []byte(block)); err != nil {
				t.Fatalf("example %s: %v", block, err)
			}
			readings = append(readings, compact.String())
		}
	}
	if len(readings) != 3 {
		t.Fatalf("the guide has %d provider examples, want 3", len(readings))
	}
	writeFile(t, filepath.Join(dir, "readings.jsonl"), adapt(strings.Join(readings, "\n")+"\n"))

	bin := filepath.Join(t.TempDir(), "bin")
	build(t, bin)
	env := append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+t.TempDir())

	programs := blocks(section, "go")
	if len(programs) != 1 {
		t.Fatalf("the first hour has %d Go programs, want 1", len(programs))
	}
	consoles := blocks(section, "console")
	if len(consoles) < 4 {
		t.Fatalf("the first hour has %d console blocks", len(consoles))
	}
	// Console blocks and the program run in the guide's order, the blocks
	// as one terminal session: what a block exports, the next ones see.
	goAt := strings.Index(section, "```go")
	ran := false
	var exports []string
	for _, c := range consoles {
		if !ran && strings.Index(section, c) > goAt {
			runGo(t, dir, adapt(programs[0]))
			ran = true
		}
		if strings.Contains(c, "kpictl dlq") {
			// "A moment later": the ingest has judged everything sent.
			settled(t, js)
		}
		exports = runConsole(t, dir, env, exports, adapt(c))
	}
	if !ran {
		runGo(t, dir, adapt(programs[0]))
	}

	// What the guide published is in the main stream: the provider's own
	// events, all valid but the one of step 5.
	msgs := streamMsgs(t, js, contract.Stream)
	if len(msgs) != 9 {
		t.Errorf("main stream holds %d messages, want the 9 the guide's steps store", len(msgs))
	}
	invalid := 0
	for _, m := range msgs {
		ev, rej := contract.Decode(m.Subject, m.Data, contract.Rules{Now: time.Now()})
		switch {
		case rej != nil:
			invalid++
		case ev.Publisher != "fcc-medi-ambient":
			t.Errorf("stored on %s: %s", m.Subject, m.Data)
		}
	}
	if invalid != 1 {
		t.Errorf("%d invalid messages stored, want the one of step 5", invalid)
	}
}

// blocks are the contents of the fenced code blocks of the given language.
func blocks(doc, lang string) []string {
	re := regexp.MustCompile("(?s)```" + lang + "\n(.*?)```")
	var out []string
	for _, m := range re.FindAllStringSubmatch(doc, -1) {
		out = append(out, m[1])
	}
	return out
}

// step is one command of a console block, with what the guide shows after it.
type step struct {
	command string
	status  int      // from a following "$ echo $?"
	output  []string // lines the guide shows
}

// steps splits a console block: "$ " starts a command, a trailing "\"
// continues it, other lines are its output.
func steps(block string) []step {
	var out []step
	cont := false
	for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		switch {
		case cont:
			out[len(out)-1].command += "\n" + line
		case strings.HasPrefix(line, "$ echo $?"):
			out = append(out, step{command: "echo $?"})
		case strings.HasPrefix(line, "$ "):
			out = append(out, step{command: strings.TrimPrefix(line, "$ ")})
		case len(out) > 0 && out[len(out)-1].command == "echo $?":
			n, _ := strconv.Atoi(strings.TrimSpace(line))
			out[len(out)-2].status = n
		case len(out) > 0 && line != "":
			out[len(out)-1].output = append(out[len(out)-1].output, line)
		}
		cont = strings.HasSuffix(line, "\\")
	}
	return out
}

// runConsole runs a console block's commands in one shell, as a reader
// would type them after the exports (and unsets) of earlier blocks, and checks each
// one's status and output: every line the guide shows must appear, in
// order (a line ending in "…" is a prefix); progress lines may come in
// between. It returns the exports so far.
func runConsole(t *testing.T, dir string, env, exports []string, block string) []string {
	t.Helper()
	var script strings.Builder
	for _, e := range exports {
		script.WriteString(e + "\n")
	}
	var checked []step
	for _, st := range steps(block) {
		if st.command == "echo $?" {
			continue
		}
		if strings.HasPrefix(st.command, "export ") || strings.HasPrefix(st.command, "unset ") {
			exports = append(exports, st.command)
		}
		n := len(checked)
		checked = append(checked, st)
		script.WriteString("{ " + st.command + "\n} >out." + strconv.Itoa(n) + " 2>&1\necho $? >status." + strconv.Itoa(n) + "\n")
	}
	sh := exec.Command("bash", "-c", script.String())
	sh.Dir, sh.Env = dir, env
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("shell: %v\n%s", err, out)
	}
	for i, st := range checked {
		out, _ := os.ReadFile(filepath.Join(dir, "out."+strconv.Itoa(i)))
		code, _ := os.ReadFile(filepath.Join(dir, "status."+strconv.Itoa(i)))
		if got, _ := strconv.Atoi(strings.TrimSpace(string(code))); got != st.status {
			t.Errorf("$ %s\nexit status %d, the guide says %d; output:\n%s", st.command, got, st.status, out)
			continue
		}
		if missing := notShown(string(out), st.output); missing != "" {
			t.Errorf("$ %s\nthe guide shows %q, not in the output:\n%s", st.command, missing, out)
		}
	}
	return exports
}

func notShown(out string, want []string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for _, w := range want {
		found := false
		for !found && sc.Scan() {
			line := sc.Text()
			if prefix, ok := strings.CutSuffix(w, "…"); ok {
				found = strings.HasPrefix(line, prefix)
			} else {
				found = line == w
			}
		}
		if !found {
			return w
		}
	}
	return ""
}

// runGo runs the guide's program in dir, as its own module that requires
// the contract module of this repository.
func runGo(t *testing.T, dir, program string) {
	t.Helper()
	contractDir, err := filepath.Abs("../../contract")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "main.go"), program)
	writeFile(t, filepath.Join(dir, "go.mod"), "module firsthour\n\ngo 1.26.0\n\n"+
		"require github.com/assoliment/assoliment/services/contract v0.0.0\n\n"+
		"replace github.com/assoliment/assoliment/services/contract => "+contractDir+"\n")
	copyFile(t, "../go.sum", filepath.Join(dir, "go.sum"))
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "stored fcc-m-") {
		t.Fatalf("the guide's Go program: %v\n%s", err, out)
	}
}

// build puts kpictl and the nats tool in dir.
func build(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "kpictl"), "../cmd/kpictl").CombinedOutput(); err != nil {
		t.Fatalf("build kpictl: %v\n%s", err, out)
	}
	cmd := exec.Command("go", "install", natsCLI)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the nats tool %s: %v\n%s", natsCLI, err, out)
	}
}

// startIngest runs the ingest service as its user of the secure
// configuration, with a fresh ClickHouse database; it creates the
// platform's streams. The operator then creates the publishers' copies of
// their dead letters, as natsauth does. The ingest must exit 0 on SIGTERM
// when the test ends.
func startIngest(t *testing.T, s *natsauthtest.Secure) jetstream.JetStream {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ingest")
	if out, err := exec.Command("go", "build", "-o", bin, "../../ingest/cmd/ingest").CombinedOutput(); err != nil {
		t.Fatalf("build ingest: %v\n%s", err, out)
	}
	ch := testenv.ClickHouse(t)
	cmd, err := proc.Start(bin, "--nats-url", s.ClientURL(), "--nats-creds", s.Seed(t, "ingest"), "--nats-tls-ca", s.Certs.CA,
		"--clickhouse-addr", testenv.ClickHouseAddr(), "--clickhouse-database", ch.Database,
		"--http-addr", testenv.FreeAddr(t), "--flush-interval", "50ms", "--log-level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ingest on SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("ingest did not stop within 30 s of SIGTERM")
		}
	})
	js, err := jetstream.New(s.ConnectAs(t, "operator"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	testenv.Eventually(t, "the ingest's streams", 30*time.Second, func() bool {
		_, err := js.Stream(ctx, contract.DeadLetterStream)
		return err == nil
	})
	if _, err := natsauth.EnsureDeadLetterStreams(ctx, js, s.Plan); err != nil {
		t.Fatal(err)
	}
	return js
}

// settled waits until the ingest has settled every message of the main
// stream and the provider's copy holds every dead letter.
func settled(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, "the ingest has judged everything sent", 30*time.Second, func() bool {
		c, err := js.Consumer(ctx, contract.Stream, "ingest")
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		if err != nil || ci.NumPending != 0 || ci.NumAckPending != 0 {
			return false
		}
		all, err := js.Stream(ctx, contract.DeadLetterStream)
		if err != nil {
			return false
		}
		own, err := js.Stream(ctx, natsauth.DeadLetterCopy(natsauth.Account(natsauth.RoleProvider, "fcc-medi-ambient")))
		if err != nil {
			return false
		}
		return own.CachedInfo().State.Msgs == all.CachedInfo().State.Msgs
	})
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); ; {
		m, err := st.GetMsg(context.Background(), seq, jetstream.WithGetMsgSubject(">"))
		if err != nil {
			return out
		}
		out = append(out, m)
		seq = m.Sequence + 1
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The guide's six complete examples are the events of
// testdata/examples.jsonl, which the kpictl tests use.
func TestExamplesFile(t *testing.T) {
	b, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile("../testdata/examples.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(file)), "\n")
	var examples []string
	for i, ex := range blocks(string(b), "json") {
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(ex)); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		examples = append(examples, compact.String())
	}
	slices.Sort(lines)
	slices.Sort(examples)
	if !slices.Equal(lines, examples) {
		t.Fatalf("the guide's examples:\n%s\nexamples.jsonl:\n%s", strings.Join(examples, "\n"), strings.Join(lines, "\n"))
	}
}
