package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	"github.com/assoliment/assoliment/services/evaluator/apiv1"
	"github.com/assoliment/assoliment/services/evaluator/internal/api"
	"github.com/assoliment/assoliment/services/evaluator/internal/engine"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	"github.com/assoliment/assoliment/services/evaluator/internal/reader"
	"github.com/assoliment/assoliment/services/evaluator/internal/report"
	"github.com/assoliment/assoliment/services/platform/httpserver"
	"github.com/assoliment/assoliment/services/simulator/sim"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// chromium finds the browser: $CHROMIUM, else chromium on the PATH. The
// browser test fails without it (make deps installs the Debian package).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found on the PATH (nor $CHROMIUM): install it with make deps (Debian package chromium)")
	}
	return p
}

// browse runs headless chromium on url with the extra arguments and
// returns what it prints; every run has a profile of its own.
func browse(t *testing.T, bin, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(append(base, args...), url)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.Bytes())
	}
	return out.Bytes()
}

// reportServer serves the API with the real report builder on db, its
// clock at now.
func reportServer(t *testing.T, db storage.Engine, now time.Time) *httptest.Server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng := engine.New(reader.New(storagetest.Audited(t, db, storage.EvaluatorAccess)), nil, nil, maturity.DefaultConfig(), log)
	mux := http.NewServeMux()
	api.Routes(mux, eng, api.Options{MaxOnDemand: 2, Now: func() time.Time { return now },
		Reports: report.New(storagetest.Audited(t, db, storage.EvaluatorAccess), madrid, maturity.DefaultConfig().MinSamples)}, log)
	srv := httptest.NewServer(httpserver.ReadOnly(mux))
	t.Cleanup(srv.Close)
	return srv
}

// TestPageInBrowser renders the October 2026 report of a simulated
// municipality in headless chromium: the screenshot is a non-blank PNG of
// the window's size, the DOM holds one chart per provider with its lines
// and breach days, the page prints to PDF, and no script is on it. The
// screenshot is kept in the test's artifacts (go test -artifacts).
func TestPageInBrowser(t *testing.T) {
	bin := chromium(t)
	end := time.Date(2026, 11, 20, 18, 45, 30, 0, time.UTC)
	g, err := sim.New(sim.Options{Seed: 7, Start: end})
	if err != nil {
		t.Fatal(err)
	}
	db := database(t)
	storagetest.Store(t, db, g.History()...)
	srv := reportServer(t, db, end)
	url := srv.URL + apiv1.ReportPath("sabadell", "2026-10") + "?format=html"

	var r apiv1.Report
	resp, err := http.Get(srv.URL + apiv1.ReportPath("sabadell", "2026-10"))
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeJSON(resp, &r); err != nil || len(r.Providers) < 2 {
		t.Fatalf("JSON report: %v, %d providers", err, len(r.Providers))
	}
	breaches := 0
	for _, p := range r.Providers {
		for _, s := range p.SLAs {
			breaches += len(s.BreachDays)
		}
	}

	dir := t.ArtifactDir()
	shot := filepath.Join(dir, "monthly-report.png")
	browse(t, bin, url, "--screenshot="+shot, "--window-size=1200,1600", "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 1600 {
		t.Errorf("screenshot is %dx%d, want 1200x1600", b.Dx(), b.Dy())
	}
	colours, inked, red := pixels(img)
	if colours < 16 || inked < 0.02 {
		t.Errorf("the screenshot looks blank: %d colours, %.3f of the pixels not white", colours, inked)
	}
	if breaches > 0 && red == 0 {
		t.Errorf("%d breach days, and no breach marker on the screenshot", breaches)
	}
	t.Logf("screenshot %s: %d colours, %.1f %% inked, %d breach-red pixels", shot, colours, inked*100, red)

	dom := string(browse(t, bin, url, "--dump-dom"))
	if n := strings.Count(dom, `<svg class="chart"`); n != len(r.Providers) {
		t.Errorf("%d charts in the DOM, want one per provider (%d)", n, len(r.Providers))
	}
	if !strings.Contains(dom, "<polyline") || !strings.Contains(dom, "<circle") {
		t.Error("the charts have no lines or points")
	}
	if got := strings.Count(dom, `class="breach"`); got != breaches {
		t.Errorf("%d breach markers, want %d", got, breaches)
	}
	if strings.Contains(dom, "<script") {
		t.Error("the page has a script")
	}

	pdf := filepath.Join(dir, "monthly-report.pdf")
	browse(t, bin, url, "--print-to-pdf="+pdf, "--no-pdf-header-footer")
	if b, err := os.ReadFile(pdf); err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) || len(b) < 10_000 {
		t.Errorf("printing to PDF: %v, %d bytes", err, len(b))
	}
}

// TestHostilePageInBrowser: names a council chose, made to break out of
// the page, stay text in a real browser.
func TestHostilePageInBrowser(t *testing.T) {
	bin := chromium(t)
	db := database(t)
	m := "hostil"
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	evs := []*contract.Event{
		ev(m, contract.Council, old, &contract.ServiceRegistered{Service: "s1", Name: `<script>document.title="pwned"</script>`, Area: "a",
			Delivery: contract.DeliveryConcession, Provider: "p1"}),
		ev(m, contract.Council, old, &contract.SLADefined{Service: "s1", KPI: "k1", Name: `"><img src=x onerror="document.title='pwned'">`,
			Unit: `</text></svg><script>document.title="pwned"</script>`, Direction: contract.HigherIsBetter, Target: 1, Objective: 0.9}),
		ev(m, contract.Council, old, &contract.ServiceRegistered{Service: "s2", Name: `</title><svg onload="document.title='pwned'">`, Area: "a",
			Delivery: contract.DeliveryOwn, Provider: contract.Council}),
		ev(m, contract.Council, old, &contract.SLADefined{Service: "s2", KPI: "k2", Name: `=HYPERLINK("http://example.invalid")`,
			Unit: "]]><style>body{display:none}</style>", Direction: contract.LowerIsBetter, Target: 1, Objective: 0.9}),
	}
	for i := range 40 {
		at := time.Date(2026, 3, 1+i%28, 10, i, 0, 0, madrid)
		evs = append(evs, measure(m, "p1", "s1", "k1", at, float64(i%3)), measure(m, contract.Council, "s2", "k2", at, float64(i%2)))
	}
	storagetest.Store(t, db, evs...)
	srv := reportServer(t, db, time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC))
	dom := string(browse(t, bin, srv.URL+apiv1.ReportPath(m, "2026-03")+"?format=html", "--dump-dom"))
	for _, bad := range []string{"<script", "<img", "<style>body"} {
		if strings.Contains(dom, bad) {
			t.Errorf("the DOM has %q", bad)
		}
	}
	if handler := regexp.MustCompile(`<[a-z][^>]*\son[a-z]+=`).FindString(dom); handler != "" {
		t.Errorf("the DOM has an event handler: %s", handler)
	}
	if !regexp.MustCompile(`<title>SLA report · hostil · 2026-03</title>`).MatchString(dom) || strings.Contains(dom, "pwned</title>") {
		t.Errorf("the page's title changed")
	}
	if strings.Count(dom, `<svg class="chart"`) != 2 || !strings.Contains(dom, "&lt;script&gt;") {
		t.Errorf("the hostile names are not shown as text:\n%s", dom)
	}
}

// pixels counts an image's colours (up to 256), the share of pixels that
// are not white, and the pixels of the breach markers' red.
func pixels(img image.Image) (colours int, inked float64, red int) {
	seen := map[uint32]bool{}
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if len(seen) < 256 {
				seen[r<<16|g<<8|bl] = true
			}
			if r < 250 || g < 250 || bl < 250 {
				n++
			}
			if r > 180 && g < 60 && bl < 60 {
				red++
			}
		}
	}
	return len(seen), float64(n) / float64(b.Dx()*b.Dy()), red
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
