package service_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/platform/testenv"
)

// binDir holds the binary built for the tests; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// gatewayBinary builds cmd/gateway once per test run.
var gatewayBinary = sync.OnceValues(func() (string, error) {
	var err error
	if binDir, err = os.MkdirTemp("", "gateway-bin"); err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "gateway")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/gateway").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// process is the gateway binary running against an embedded NATS server.
type process struct {
	*env
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	exited chan error
}

func startProcess(t *testing.T) *process {
	t.Helper()
	bin, err := gatewayBinary()
	if err != nil {
		t.Fatal(err)
	}
	ns := testenv.NATS(t)
	e := &env{ns: ns, js: mustJS(t, testenv.Connect(t, ns)), tokens: map[string]string{}}
	createStreams(t, e.js)
	e.file = filepath.Join(t.TempDir(), "tokens.yaml")
	e.writeTokens(t, map[string][]string{provider: {"sabadell", "terrassa"}, otherCompany: {"sabadell"}})
	addr := testenv.FreeAddr(t)
	e.url = "http://" + addr
	p := &process{env: e, stderr: &bytes.Buffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--http-addr", addr, "--rate-limit", "100000", "--rate-burst", "100000")
	p.cmd.Env = append(os.Environ(), "NATS_URL="+ns.ClientURL(), "GATEWAY_TOKENS_FILE="+e.file, "LOG_LEVEL=info")
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("gateway's log:\n%s", p.stderr)
		}
	})
	testenv.Eventually(t, "the gateway process to be ready", 20*time.Second, func() bool {
		r, err := http.Get(e.url + "/readyz")
		if err == nil {
			r.Body.Close()
		}
		return err == nil && r.StatusCode == 200
	})
	return p
}

// stop sends SIGTERM and requires exit status 0.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("gateway exited with %v on SIGTERM", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("gateway did not exit within 60 s of SIGTERM")
	}
}

// SIGTERM in the middle of a load: the process finishes the requests it
// has, exits 0, and every event it answered 202 (or counted accepted in a
// batch) is in the stream.
func TestShutdownUnderLoadLosesNothingAcknowledged(t *testing.T) {
	p := startProcess(t)
	var mu sync.Mutex
	acknowledged := map[string]bool{}
	var answered, refused int
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				var ids []string
				var body []byte
				contentType := structured
				if w%2 == 0 { // batches of 50
					contentType = batch
					items := make([][]byte, 50)
					for i := range items {
						ids = append(ids, fmt.Sprintf("w%d-%d-%d", w, n, i))
						items[i] = measurement(t, ids[i], "sabadell", provider)
					}
					body = append(append([]byte("["), bytes.Join(items, []byte(","))...), ']')
				} else {
					ids = []string{fmt.Sprintf("w%d-%d", w, n)}
					body = measurement(t, ids[0], "terrassa", provider)
				}
				req, _ := http.NewRequest(http.MethodPost, p.url+"/api/v1/events", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+p.tokens[provider])
				req.Header.Set("Content-Type", contentType)
				r, err := client.Do(req)
				if err != nil { // the listener is closed: the load ends
					return
				}
				b, _ := io.ReadAll(r.Body)
				r.Body.Close()
				mu.Lock()
				switch r.StatusCode {
				case 202:
					acknowledged[ids[0]] = true
				case 200:
					var a struct{ Accepted int }
					if json.Unmarshal(b, &a) != nil || a.Accepted != len(ids) {
						t.Errorf("batch answer %s", b)
					}
					for _, id := range ids {
						acknowledged[id] = true
					}
				default:
					refused++
				}
				answered++
				mu.Unlock()
			}
		}()
	}
	testenv.Eventually(t, "some load", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return answered > 60
	})
	p.stop(t)
	wg.Wait()
	stored := p.storedIDs(t)
	for id := range acknowledged {
		if stored[id] == 0 {
			t.Errorf("event %s was acknowledged and is not in the stream", id)
		}
	}
	t.Logf("%d requests answered (%d refused), %d events acknowledged, %d messages stored",
		answered, refused, len(acknowledged), len(stored))
	if !bytes.Contains(p.stderr.Bytes(), []byte("gateway stopped")) {
		t.Fatalf("no clean stop in the log:\n%s", p.stderr)
	}
}

// The real process re-reads its tokens file on SIGHUP.
func TestProcessReloadsOnSIGHUP(t *testing.T) {
	p := startProcess(t)
	target := filepath.Join(t.TempDir(), "real-tokens.yaml")
	if err := os.Rename(p.file, target); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p.file); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	p.file = target
	p.writeTokens(t, map[string][]string{"bus-vallesa": {"sabadell"}})
	time.Sleep(500 * time.Millisecond)
	body := measurement(t, "h-1", "sabadell", "bus-vallesa")
	if a := p.post(t, p.tokens["bus-vallesa"], structured, body); a.code != 401 {
		t.Fatalf("the change was seen without a signal (%d); the test proves nothing", a.code)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the new token to work after SIGHUP", 10*time.Second, func() bool {
		return p.post(t, p.tokens["bus-vallesa"], structured, body).code == 202
	})
	p.stop(t)
}

// A configuration error names the setting and the expected form, and the
// process exits 2.
func TestProcessConfigurationError(t *testing.T) {
	bin, err := gatewayBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{"HTTP_ADDR=nowhere"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit %v", err)
	}
	for _, want := range []string{"HTTP_ADDR", "host:port", "GATEWAY_TOKENS_FILE", "must be set"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("output does not mention %q:\n%s", want, out)
		}
	}
}
