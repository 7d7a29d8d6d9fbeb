package service_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/platform/testenv"
)

// While NATS is down the gateway answers 503 with Retry-After, and is not
// ready; once NATS is back, events are stored again.
func TestNATSOutage(t *testing.T) {
	dir, port := t.TempDir(), testenv.FreePort(t)
	ns := testenv.NATSOn(t, dir, port)
	e := startOn(t, ns)
	tok := e.tokens[provider]
	if a := e.post(t, tok, structured, measurement(t, "n-1", "sabadell", provider)); a.code != 202 {
		t.Fatalf("%d %s", a.code, a.body)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	testenv.Eventually(t, "the gateway to see NATS gone", 10*time.Second, func() bool {
		r, err := http.Get(e.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode == 503
	})
	a := e.post(t, tok, structured, measurement(t, "n-2", "sabadell", provider))
	a.problem(t, 503, "unavailable")
	if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", a.header.Get("Retry-After"))
	}
	e.post(t, tok, batch, []byte("["+string(measurement(t, "n-3", "sabadell", provider))+"]")).problem(t, 503, "unavailable")

	testenv.NATSOn(t, dir, port)
	testenv.Eventually(t, "events to be stored again", 20*time.Second, func() bool {
		return e.post(t, tok, structured, measurement(t, "n-4", "sabadell", provider)).code == 202
	})
	ids := e.storedIDs(t)
	if ids["n-1"] != 1 || ids["n-4"] < 1 || ids["n-2"] != 0 {
		t.Fatalf("stored %v", ids)
	}
}

// An event JetStream does not acknowledge within ACK_TIMEOUT is answered
// 503: here the stream is gone and a plain subscriber takes the messages
// without replying.
func TestAckTimeout(t *testing.T) {
	e := start(t, "--ack-timeout", "300ms", "--write-timeout", "5s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []string{contract.Stream, contract.ImportStream} {
		if err := e.js.DeleteStream(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	nc := testenv.Connect(t, e.ns)
	if _, err := nc.Subscribe("smartcity.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	d := e.post(t, e.tokens[provider], structured, measurement(t, "to-1", "sabadell", provider)).problem(t, 503, "unavailable")
	if !strings.Contains(d, "timeout") {
		t.Fatalf("detail %q", d)
	}
	if v := e.metric(t, "smartcity_gateway_events_total", `publisher="fcc-medi-ambient"`, `outcome="unavailable"`); v != 1 {
		t.Fatalf("unavailable metric %v", v)
	}
}

// An acknowledgement from another stream than STREAM is not taken as
// stored.
func TestAckFromAnotherStream(t *testing.T) {
	e := start(t, "--stream", "OTHER")
	d := e.post(t, e.tokens[provider], structured, measurement(t, "os-1", "sabadell", provider)).problem(t, 503, "unavailable")
	if !strings.Contains(d, "stored by stream SMARTCITY, not OTHER") {
		t.Fatalf("detail %q", d)
	}
}
