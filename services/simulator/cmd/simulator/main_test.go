package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/simulator/run"
)

func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "simulator")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// The simulator logs in to the shipped secure configuration as the
// operator, with the operator's seed file and the CA: load mode has every
// message acknowledged, run mode publishes and exits 0 on SIGTERM. Without
// the CA it fails (1); with a bad setting it refuses to start (2).
func TestOnTheSecureBroker(t *testing.T) {
	s := natsauthtest.Start(t, false)
	bin := build(t)
	login := []string{"--nats-url", s.ClientURL(), "--creds", s.Seed(t, "operator"), "--tls-ca", s.Certs.CA}

	var stdout, stderr bytes.Buffer
	load := exec.Command(bin, append(login, "--mode", "load", "--count", "300", "--municipalities", "2", "--log-level", "warn")...)
	load.Stdout, load.Stderr = &stdout, &stderr
	if err := load.Run(); err != nil {
		t.Fatalf("load mode: %v\n%s", err, stderr.String())
	}
	var rep run.LoadReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("load report %q: %v", stdout.String(), err)
	}
	if rep.Published != rep.Catalog+300 || rep.Acked != rep.Published || rep.Failed != 0 {
		t.Fatalf("load report %+v", rep)
	}

	js, err := jetstream.New(s.ConnectAs(t, "operator"))
	if err != nil {
		t.Fatal(err)
	}
	stored := func() uint64 {
		st, err := js.Stream(context.Background(), "SMARTCITY")
		if err != nil {
			return 0
		}
		info, err := st.Info(context.Background())
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	before := stored()
	stderr.Reset()
	live := exec.Command(bin, append(login, "--backfill", "1d")...)
	live.Stderr = &stderr
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the backfill stored", 60*time.Second, func() bool { return stored() > before+100 })
	if err := live.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := live.Wait(); err != nil {
		t.Fatalf("run mode on SIGTERM: %v\n%s", err, stderr.String())
	}

	noCA := exec.Command(bin, "--nats-url", s.ClientURL(), "--creds", s.Seed(t, "operator"), "--mode", "backfill")
	out, err := noCA.CombinedOutput()
	if code := exitCode(err); code != 1 || !strings.Contains(string(out), "certificate") {
		t.Fatalf("without the CA: exit %d\n%s", code, out)
	}
	out, err = exec.Command(bin, "--inbox-prefix", "_INBOX.>").CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "inbox-prefix") {
		t.Fatalf("bad setting: exit %d\n%s", code, out)
	}
}

func exitCode(err error) int {
	var x *exec.ExitError
	if errors.As(err, &x) {
		return x.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
