// Command gatewaybench measures the HTTP gateway against direct NATS
// publishing in the same run: events per second through the gateway with
// batches, and the latency of single-event requests at a steady rate, each
// beside the same load published straight to JetStream with the contract's
// publisher. It starts an embedded NATS server with the platform's streams
// and the gateway on loopback, and prints a markdown table.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/gateway/config"
	"github.com/assoliment/assoliment/services/gateway/service"
	"github.com/assoliment/assoliment/services/gateway/tokens"
)

const (
	publisher    = "fcc-medi-ambient"
	municipality = "sabadell"
)

type options struct {
	events, batch, clients int
	rate                   int
	duration               time.Duration
}

// row is one line of the result table.
type row struct {
	path         string
	events       int
	seconds      float64
	p50, p99, mx time.Duration // zero for throughput rows
}

func main() {
	var o options
	flag.IntVar(&o.events, "events", 200000, "events of each throughput run")
	flag.IntVar(&o.batch, "batch", 500, "events per batch request")
	flag.IntVar(&o.clients, "clients", 4, "concurrent HTTP clients of the batched run")
	flag.IntVar(&o.rate, "latency-rate", 500, "single events per second of the latency runs")
	flag.DurationVar(&o.duration, "latency-duration", 30*time.Second, "length of each latency run")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "gatewaybench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true,
		StoreDir: filepath.Join(dir, "nats"), NoSigs: true, MaxPayload: 1 << 20})
	if err != nil {
		return err
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	for _, sc := range []jetstream.StreamConfig{contract.ImportStreamConfig(), contract.StreamConfig(contract.Stream)} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}

	token, entry, err := tokens.New(publisher, []string{municipality})
	if err != nil {
		return err
	}
	file := filepath.Join(dir, "tokens.yaml")
	if err := os.WriteFile(file, []byte("tokens:\n"+entry.YAML()), 0o600); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, err := config.Parse([]string{"--nats-url", ns.ClientURL(), "--http-addr", addr, "--tokens-file", file,
		"--rate-limit", "10000000", "--rate-burst", "100000000", "--log-level", "error"}, func(string) string { return "" })
	if err != nil {
		return err
	}
	gctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- service.Run(gctx, cfg, io.Discard, nil) }()
	defer func() { stop(); <-done }()
	url := "http://" + addr + "/api/v1/events"
	if err := waitReady("http://" + addr + "/readyz"); err != nil {
		return err
	}
	// Enough idle connections that a burst of slow answers does not make
	// the latency run dial new ones for ever after.
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}, Timeout: time.Minute}

	var rows []row
	seq := 0
	next := func(n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			seq++
			out[i] = event(seq)
		}
		return out
	}
	fmt.Fprintf(os.Stderr, "gateway, %d events in batches of %d\n", o.events, o.batch)
	r, err := batched(client, url, token, next(o.events), o)
	if err != nil {
		return err
	}
	rows = append(rows, r)
	fmt.Fprintf(os.Stderr, "NATS direct, %d events\n", o.events)
	if r, err = direct(ctx, js, next(o.events)); err != nil {
		return err
	}
	rows = append(rows, r)
	n := int(o.duration.Seconds() * float64(o.rate))
	fmt.Fprintf(os.Stderr, "gateway, single events at %d/s for %s (after a second of warm-up)\n", o.rate, o.duration)
	warm := next(o.rate)
	if _, err = steady("warm-up", len(warm), o.rate, func(i int) error {
		return post(client, url, token, "application/cloudevents+json", warm[i], http.StatusAccepted)
	}); err != nil {
		return err
	}
	evs := next(n)
	if r, err = steady(fmt.Sprintf("gateway, single events at %d/s", o.rate), n, o.rate, func(i int) error {
		return post(client, url, token, "application/cloudevents+json", evs[i], http.StatusAccepted)
	}); err != nil {
		return err
	}
	rows = append(rows, r)
	fmt.Fprintf(os.Stderr, "NATS direct, single publishes at %d/s for %s\n", o.rate, o.duration)
	evs = next(n)
	if r, err = steady(fmt.Sprintf("NATS direct, single publishes at %d/s", o.rate), n, o.rate, func(i int) error {
		m := nats.NewMsg(contract.Subject(municipality, publisher, contract.KindMeasurement))
		m.Data = evs[i]
		m.Header.Set(nats.MsgIdHdr, fmt.Sprint(i))
		_, err := js.PublishMsg(ctx, m)
		return err
	}); err != nil {
		return err
	}
	rows = append(rows, r)
	report(rows, o)
	return nil
}

// event is a valid measurement with id n, timed a minute ago.
func event(n int) []byte {
	b, err := contract.Marshal(&contract.Event{
		ID: fmt.Sprintf("bench-%d", n), Source: "urn:provider:" + publisher, Type: contract.TypeKPIMeasured,
		Time: time.Now().Add(-time.Minute).UTC(), Municipality: municipality, Publisher: publisher,
		Data: &contract.KPIMeasured{Service: "waste-collection", KPI: "containers-emptied-on-time", Value: 0.991},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// batched posts events in batches from o.clients clients at once.
func batched(client *http.Client, url, token string, events [][]byte, o options) (row, error) {
	var bodies [][]byte
	for i := 0; i < len(events); i += o.batch {
		part := events[i:min(i+o.batch, len(events))]
		bodies = append(bodies, append(append([]byte("["), bytes.Join(part, []byte(","))...), ']'))
	}
	work := make(chan []byte, len(bodies))
	for _, b := range bodies {
		work <- b
	}
	close(work)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, o.clients)
	for range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				if err := post(client, url, token, "application/cloudevents-batch+json", b, http.StatusOK); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return row{}, err
	}
	return row{path: fmt.Sprintf("gateway, batches of %d (%d clients)", o.batch, o.clients),
		events: len(events), seconds: time.Since(start).Seconds()}, nil
}

// direct publishes events with the contract's publisher.
func direct(ctx context.Context, js jetstream.JetStream, events [][]byte) (row, error) {
	p := contract.NewPublisher(js, contract.WithMaxInFlight(1024))
	subject := contract.Subject(municipality, publisher, contract.KindMeasurement)
	start := time.Now()
	for i, b := range events {
		if err := p.PublishRaw(ctx, subject, fmt.Sprintf("direct-%d", i), b); err != nil {
			return row{}, err
		}
	}
	if err := p.Wait(ctx); err != nil {
		return row{}, err
	}
	return row{path: "NATS direct, contract publisher (1,024 in flight)", events: len(events), seconds: time.Since(start).Seconds()}, nil
}

// steady runs send n times at rate per second, each at its scheduled time
// whether or not earlier ones have finished, and measures each from its
// scheduled time, so a slow answer delays no measurement.
func steady(path string, n, rate int, send func(i int) error) (row, error) {
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := send(i); err != nil {
				errs <- err
			}
			lat[i] = time.Since(at)
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return row{}, err
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return row{path: path, events: n, seconds: time.Since(start).Seconds(), p50: q(0.50), p99: q(0.99), mx: lat[len(lat)-1]}, nil
}

func post(client *http.Client, url, token, contentType string, body []byte, want int) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	r, err := client.Do(req)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != want {
		return fmt.Errorf("answer %d, want %d: %s", r.StatusCode, want, b)
	}
	return nil
}

func waitReady(url string) error {
	for range 100 {
		if r, err := http.Get(url); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("gateway not ready")
}

func report(rows []row, o options) {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }
	fmt.Printf("Gateway benchmark, %s, %d CPUs, %s/%s; NATS embedded, gateway on loopback, one process\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	fmt.Println("| path | events | seconds | events/s | p50 ms | p99 ms | max ms |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rows {
		p50, p99, mx := "", "", ""
		if r.p99 > 0 {
			p50, p99, mx = ms(r.p50), ms(r.p99), ms(r.mx)
		}
		fmt.Printf("| %s | %d | %.2f | %.0f | %s | %s | %s |\n", r.path, r.events, r.seconds, float64(r.events)/r.seconds, p50, p99, mx)
	}
	batchedRate := float64(rows[0].events) / rows[0].seconds
	fmt.Printf("\nTargets: batched >= 20,000 events/s: %.0f (%s); single-event p99 <= 50 ms at %d/s: %s ms (%s)\n",
		batchedRate, verdict(batchedRate >= 20000), o.rate, ms(rows[2].p99), verdict(rows[2].p99 <= 50*time.Millisecond))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
