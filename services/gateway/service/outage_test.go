package service_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

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
