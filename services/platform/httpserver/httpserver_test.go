package httpserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs ReadOnly(h) on a free port until the test ends.
func serve(t *testing.T) (*Server, string) {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	s, err := Listen("127.0.0.1:0", ReadOnly(h))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return s, "http://" + s.Addr()
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestLimitsSet(t *testing.T) {
	s, _ := serve(t)
	if s.srv.ReadHeaderTimeout <= 0 || s.srv.ReadTimeout <= 0 || s.srv.WriteTimeout <= 0 || s.srv.IdleTimeout <= 0 {
		t.Fatalf("every timeout must be set: %+v", s.srv)
	}
	if s.srv.ReadHeaderTimeout > 10*time.Second || s.srv.MaxHeaderBytes <= 0 || s.srv.MaxHeaderBytes > 64<<10 {
		t.Fatalf("header limits: %v, %d bytes", s.srv.ReadHeaderTimeout, s.srv.MaxHeaderBytes)
	}
}

func TestOnlyReads(t *testing.T) {
	_, base := serve(t)
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(m, base+"/x", nil)
		if resp, _ := do(t, req); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", m, resp.StatusCode)
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "TRACE", "BREW"} {
		req, _ := http.NewRequest(m, base+"/x", strings.NewReader(`{"a":1}`))
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" || !strings.Contains(body, "method not allowed") {
			t.Errorf("%s: %d %q %q", m, resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	}
}

func TestOversizedHeaderRefused(t *testing.T) {
	_, base := serve(t)
	req, _ := http.NewRequest(http.MethodGet, base+"/x", nil)
	req.Header.Set("X-Padding", strings.Repeat("a", 64<<10))
	if resp, _ := do(t, req); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 64 KiB header: %d, want 431", resp.StatusCode)
	}
	// The server still serves after refusing it.
	req, _ = http.NewRequest(http.MethodGet, base+"/x", nil)
	if resp, body := do(t, req); resp.StatusCode != http.StatusOK || body != "ok" {
		t.Fatalf("after the refusal: %d %q", resp.StatusCode, body)
	}
}
