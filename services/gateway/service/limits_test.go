package service_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/platform/testenv"
)

// The rate limit is per token, a batch counts as its events, and a token
// over its limit gets 429 with Retry-After while others go on.
func TestRateLimitPerToken(t *testing.T) {
	e := start(t, "--rate-limit", "2", "--rate-burst", "10", "--max-batch-events", "10")
	tok := e.tokens[provider]
	items := make([][]byte, 10)
	for i := range items {
		items[i] = measurement(t, fmt.Sprintf("r-%d", i), "sabadell", provider)
	}
	if a := e.post(t, tok, batch, append(append([]byte("["), bytes.Join(items, []byte(","))...), ']')); a.code != 200 {
		t.Fatalf("the first batch of 10 fits the burst: %d %s", a.code, a.body)
	}
	a := e.post(t, tok, structured, measurement(t, "r-over", "sabadell", provider))
	a.problem(t, 429, "rate_limited")
	if s, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", a.header.Get("Retry-After"))
	}
	// A batch of 3 when 2 events a second come back: refused whole.
	a = e.post(t, tok, batch, append(append([]byte("["), bytes.Join(items[:3], []byte(","))...), ']'))
	a.problem(t, 429, "rate_limited")
	// Another token is unaffected.
	if a := e.post(t, e.tokens[otherCompany], structured, measurement(t, "o-1", "sabadell", otherCompany)); a.code != 202 {
		t.Fatalf("other token: %d %s", a.code, a.body)
	}
	// The limited token gets in again after the time it was told.
	testenv.Eventually(t, "the token to be admitted again", 10*time.Second, func() bool {
		return e.post(t, tok, structured, measurement(t, "r-later", "sabadell", provider)).code == 202
	})
	if v := e.metric(t, "smartcity_gateway_events_total", `publisher="fcc-medi-ambient"`, `outcome="rate_limited"`); v < 1 {
		t.Fatalf("rate_limited events metric %v", v)
	}
	if v := e.metric(t, "smartcity_gateway_requests_total", `publisher="fcc-medi-ambient"`, `code="429"`); v < 2 {
		t.Fatalf("429 requests metric %v", v)
	}
}

// A flood from one token does not keep another token's events out: while
// the flood is refused with 429, every event of the other token is stored.
func TestFloodFromOneTokenDoesNotStarveAnother(t *testing.T) {
	e := start(t, "--rate-limit", "50", "--rate-burst", "1000")
	flooder, quiet := e.tokens[provider], e.tokens[otherCompany]
	ctx, stop := context.WithCancel(context.Background())
	var flood sync.WaitGroup
	var refused, floodSent atomic.Int64
	body := measurement(t, "flood", "sabadell", provider)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for range 8 {
		flood.Add(1)
		go func() {
			defer flood.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url+"/api/v1/events", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+flooder)
				req.Header.Set("Content-Type", structured)
				r, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body.Close()
				floodSent.Add(1)
				if r.StatusCode == 429 {
					refused.Add(1)
				}
			}
		}()
	}
	testenv.Eventually(t, "the flood to be refused", 30*time.Second, func() bool { return refused.Load() > 100 })
	for i := range 40 {
		id := fmt.Sprintf("quiet-%d", i)
		if a := e.post(t, quiet, structured, measurement(t, id, "sabadell", otherCompany)); a.code != 202 {
			t.Fatalf("event %s of the quiet token during the flood: %d %s", id, a.code, a.body)
		}
	}
	stillFlooding := refused.Load()
	stop()
	flood.Wait()
	if stillFlooding <= 100 {
		t.Fatal("the flood stopped before the quiet token was done")
	}
	ids := e.storedIDs(t)
	for i := range 40 {
		if ids[fmt.Sprintf("quiet-%d", i)] != 1 {
			t.Fatalf("quiet-%d stored %d times", i, ids[fmt.Sprintf("quiet-%d", i)])
		}
	}
	t.Logf("flood: %d requests, %d refused with 429; stored copies of the flood's event: %d", floodSent.Load(), refused.Load(), ids["flood"])
}

// Bodies and headers beyond the limits are refused without being held,
// and a client that sends its headers slowly is cut off while others are
// served.
func TestHostileRequests(t *testing.T) {
	e := start(t, "--read-header-timeout", "500ms", "--max-header-bytes", "8192")
	tok := e.tokens[provider]

	t.Run("huge body", func(t *testing.T) {
		// 1 GiB announced and streamed: refused on the announced length.
		r, w := io.Pipe()
		go func() {
			chunk := bytes.Repeat([]byte("["), 1<<20)
			for i := 0; i < 1024; i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			w.Close()
		}()
		req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/events", r)
		req.ContentLength = 1 << 30
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", batch)
		do(t, req).problem(t, 413, "too_large")
		r.Close()
		// The same without a length (chunked): cut at the limit.
		r2, w2 := io.Pipe()
		go func() {
			chunk := bytes.Repeat([]byte(" "), 1<<20)
			_, _ = w2.Write([]byte("["))
			for i := 0; i < 64; i++ {
				if _, err := w2.Write(chunk); err != nil {
					return
				}
			}
			w2.Close()
		}()
		req, _ = http.NewRequest(http.MethodPost, e.url+"/api/v1/events", r2)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", batch)
		do(t, req).problem(t, 413, "too_large")
		r2.Close()
	})
	t.Run("huge header", func(t *testing.T) {
		a := e.post(t, tok, structured, measurement(t, "h-1", "sabadell", provider), "X-Big", strings.Repeat("a", 64<<10))
		if a.code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("got %d", a.code)
		}
	})
	t.Run("many headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/events", bytes.NewReader(measurement(t, "h-2", "sabadell", provider)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", structured)
		for i := range 5000 {
			req.Header.Set(fmt.Sprintf("ce-x%d", i), "1")
		}
		if a := do(t, req); a.code != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("got %d", a.code)
		}
	})
	t.Run("slow client", func(t *testing.T) {
		addr := strings.TrimPrefix(e.url, "http://")
		var slow []net.Conn
		for range 20 { // slowloris: many connections, each sending a header line now and then
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _ = c.Write([]byte("POST /api/v1/events HTTP/1.1\r\nHost: x\r\n"))
			slow = append(slow, c)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < 30; i++ {
				for _, c := range slow {
					if _, err := fmt.Fprintf(c, "X-Slow-%d: a\r\n", i); err != nil {
						return
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		// Meanwhile an honest client is served.
		if a := e.post(t, tok, structured, measurement(t, "honest", "sabadell", provider)); a.code != 202 {
			t.Fatalf("honest client during the slow ones: %d %s", a.code, a.body)
		}
		<-done
		// The server cut every slow connection at the header timeout
		// (closed, perhaps after an error status line), never serving it.
		for i, c := range slow {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			rd := bufio.NewReader(c)
			line, err := rd.ReadString('\n')
			if err == nil && (strings.Contains(line, " 2") || strings.Contains(line, " 401")) {
				t.Fatalf("slow connection %d was served: %q", i, line)
			}
			if err == nil {
				_, err = io.Copy(io.Discard, rd)
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("slow connection %d still open", i)
			}
		}
	})
	t.Run("attacker-chosen values grow nothing", func(t *testing.T) {
		before := e.metricLines(t)
		for i := range 300 {
			muni, pub := fmt.Sprintf("m%06d", i), fmt.Sprintf("p%06d", i)
			e.post(t, tok, structured, measurement(t, fmt.Sprintf("x-%d", i), muni, pub)).problem(t, 403, "forbidden")
			e.post(t, tok, structured, measurement(t, fmt.Sprintf("y-%d", i), "sabadell", pub)).problem(t, 403, "forbidden")
			e.post(t, fmt.Sprintf("asl_guess%d", i), structured, measurement(t, "z", muni, pub)).problem(t, 401, "unauthorized")
			e.post(t, tok, batch, []byte(fmt.Sprintf(`[{"specversion":"1.0","municipality":%q,"publisher":%q}]`, muni, pub)))
		}
		after := e.metricLines(t)
		for l := range after {
			if !before[l] && !strings.HasPrefix(l, "go_") && !strings.HasPrefix(l, "process_") {
				if strings.Contains(l, "m0") || strings.Contains(l, "p0") {
					t.Fatalf("a new series names an attacker's value: %s", l)
				}
			}
		}
		if len(after) > len(before)+20 {
			t.Fatalf("series grew from %d to %d", len(before), len(after))
		}
	})
}

// metricLines returns the names and labels of every series.
func (e *env) metricLines(t testing.TB) map[string]bool {
	t.Helper()
	r, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	out := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out[l[:strings.LastIndexByte(l, ' ')]] = true
		}
	}
	return out
}

// With fewer slots for unacknowledged events than a batch holds, batches
// from several clients at once still complete: a request waits for room,
// or settles its own oldest events, and never deadlocks.
func TestInFlightBoundSmallerThanABatch(t *testing.T) {
	e := start(t, "--max-in-flight", "4")
	var wg sync.WaitGroup
	for c := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range 4 {
				items := make([][]byte, 50)
				for i := range items {
					items[i] = measurement(t, fmt.Sprintf("f-%d-%d-%d", c, b, i), "sabadell", provider)
				}
				a, err := e.tryPost(e.tokens[provider], batch, append(append([]byte("["), bytes.Join(items, []byte(","))...), ']'))
				if err != nil || a.code != 200 || !strings.HasPrefix(string(a.body), `{"accepted":50,`) {
					t.Errorf("batch %d-%d: %v %d %s", c, b, err, a.code, a.body)
				}
			}
		}()
	}
	wg.Wait()
	if ids := e.storedIDs(t); len(ids) != 600 {
		t.Fatalf("%d events stored, want 600", len(ids))
	}
}

// Request bodies held at once are bounded whatever the tokens: sixteen
// batch requests of the largest size whose bodies are slow to come fill
// the budget, the next request is answered 503 with Retry-After before
// its body is read, and requests are taken again once those end.
func TestBodiesHeldAtOnceAreBounded(t *testing.T) {
	const largest = 65536
	e := start(t, "--max-batch-bytes", strconv.Itoa(largest))
	host := strings.TrimPrefix(e.url, "http://")
	var slow []net.Conn
	for range 16 {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		slow = append(slow, c)
		fmt.Fprintf(c, "POST /api/v1/events HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n[",
			host, e.tokens[provider], batch, largest)
	}
	testenv.Eventually(t, "sixteen largest bodies booked", 20*time.Second, func() bool {
		return e.metric(t, "smartcity_gateway_request_body_bytes_held") == 16*largest
	})
	one := measurement(t, "held-1", "sabadell", otherCompany)
	a := e.post(t, e.tokens[otherCompany], structured, one)
	a.problem(t, 503, "unavailable")
	if a.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	for _, c := range slow {
		c.Close()
	}
	testenv.Eventually(t, "requests taken again", 20*time.Second, func() bool {
		return e.post(t, e.tokens[otherCompany], structured, one).code == 202
	})
	testenv.Eventually(t, "no bytes booked with no request open", 20*time.Second, func() bool {
		return e.metric(t, "smartcity_gateway_request_body_bytes_held") == 0
	})
}
