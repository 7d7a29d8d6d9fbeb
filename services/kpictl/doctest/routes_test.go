package doctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/natsauth/natsauthtest"
)

// otherRoutes is the guide's section run by TestOtherRoutes.
const otherRoutes = "## Other routes: MQTT and the CloudEvents SDK"

// TestOtherRoutes runs the guide's MQTT command (mosquitto_pub, from the
// Debian package mosquitto-clients) and its CloudEvents SDK program, as
// written, against the shipped secure configuration, and checks that the
// platform stored both events.
func TestOtherRoutes(t *testing.T) {
	b, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, otherRoutes)
	if start < 0 {
		t.Fatalf("%s no longer has %q", guide, otherRoutes)
	}
	section := doc[start:]
	if next := strings.Index(section[len(otherRoutes):], "\n## "); next >= 0 {
		section = section[:len(otherRoutes)+next]
	}
	if _, err := exec.LookPath("mosquitto_pub"); err != nil {
		t.Fatal("this test needs mosquitto_pub (Debian package mosquitto-clients; `make deps` installs it)")
	}
	s := natsauthtest.Start(t, false)
	js := startIngest(t, s)
	dir := t.TempDir()
	copyFile(t, s.Seed(t, "provider-fcc-medi-ambient"), filepath.Join(dir, "provider-fcc-medi-ambient.nk"))
	copyFile(t, filepath.Join(s.SeedDir, "provider-fcc-medi-ambient.mqtt"), filepath.Join(dir, "provider-fcc-medi-ambient.mqtt"))
	copyFile(t, s.Certs.CA, filepath.Join(dir, "ca.pem"))
	mqttHost, mqttPort, _ := strings.Cut(s.MQTTAddr, ":")
	yesterday := time.Now().UTC().AddDate(0, 0, -1)
	adapt := func(text string) string {
		text = strings.ReplaceAll(text, "-h nats.example.cat -p 8883", "-h "+mqttHost+" -p "+mqttPort)
		text = strings.ReplaceAll(text, "2026-11-20T", yesterday.Format("2006-01-02")+"T")
		return strings.ReplaceAll(text, "time.Date(2026, 11, 20,", yesterday.Format("time.Date(2006, 1, 2,"))
	}
	consoles := blocks(section, "console")
	programs := blocks(section, "go")
	if len(consoles) != 1 || len(programs) != 1 {
		t.Fatalf("the section has %d console blocks and %d Go programs, want 1 and 1", len(consoles), len(programs))
	}
	env := append(os.Environ(), "HOME="+t.TempDir())
	runConsole(t, dir, env, nil, adapt(consoles[0]))

	writeFile(t, filepath.Join(dir, "main.go"), adapt(programs[0]))
	writeFile(t, filepath.Join(dir, "go.mod"), "module sdkroute\n\ngo 1.26.0\n")
	copyFile(t, "../go.sum", filepath.Join(dir, "go.sum"))
	get := exec.Command("go", "get", "github.com/cloudevents/sdk-go/v2@v2.16.2",
		"github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2@v2.16.2", "github.com/nats-io/nats.go@v1.55.0")
	get.Dir, get.Env = dir, append(os.Environ(), "GOWORK=off")
	if out, err := get.CombinedOutput(); err != nil {
		t.Fatalf("go get: %v\n%s", err, out)
	}
	run := exec.Command("go", "run", ".")
	run.Dir, run.Env = dir, append(os.Environ(), "GOWORK=off", "NATS_URL="+s.ClientURL())
	if out, err := run.CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "stored fcc-m-") {
		t.Fatalf("the guide's CloudEvents SDK program: %v\n%s", err, out)
	}

	settled(t, js)
	ids := map[string]bool{}
	for _, m := range streamMsgs(t, js, contract.Stream) {
		ev, rej := contract.DecodeMessage(m.Subject, m.Header, m.Data, contract.Rules{Now: time.Now()})
		if rej != nil {
			t.Errorf("stored on %s but invalid: %v", m.Subject, rej)
			continue
		}
		ids[ev.ID] = true
	}
	for _, id := range []string{"fcc-m-20261120-1300-containers", "fcc-m-20261120-1315-containers"} {
		if !ids[id] {
			t.Errorf("%s not in the main stream: %v", id, ids)
		}
	}
}
