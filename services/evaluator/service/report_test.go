package service_test

import (
	"context"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/evaluator/apiv1"
	evalconfig "github.com/assoliment/assoliment/services/evaluator/config"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	evaluator "github.com/assoliment/assoliment/services/evaluator/service"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// TestReportServed runs the evaluator with REPORT_TIME_ZONE set and reads
// the current month's report of a stored municipality through the API, as
// JSON and CSV, and through kpictl: the months are those of the zone, the
// criteria's min_samples applies, and unknown municipalities are 404.
func TestReportServed(t *testing.T) {
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	db := storage.NewConn(ch)
	if err := storage.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Second)
	evs, _ := eventsFor(maturity.SampleInput("vic", 5, at))
	storagetest.Store(t, db, evs...)
	cfg, err := evalconfig.Parse([]string{"--nats-url", ns.ClientURL(), "--clickhouse-database", ch.Database,
		"--clickhouse-addr", testenv.ClickHouseAddr(), "--http-addr", testenv.FreeAddr(t), "--log-level", "warn"},
		func(k string) string { return map[string]string{"REPORT_TIME_ZONE": "Pacific/Kiritimati"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	run(t, "evaluator", func(ctx context.Context) error { return evaluator.Run(ctx, cfg, io.Discard) })
	base := "http://" + cfg.HTTPAddr
	testenv.Eventually(t, "evaluator listening", 60*time.Second, func() bool { return getJSON(t, base+"/healthz", nil) == 200 })

	// UTC+14: the current month there may not be the current month in UTC.
	kiritimati, err := time.LoadLocation("Pacific/Kiritimati")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(kiritimati)
	month := now.Format("2006-01")
	var r apiv1.Report
	if code := getJSON(t, base+apiv1.ReportPath("vic", month), &r); code != 200 {
		t.Fatalf("report: %d", code)
	}
	if r.TimeZone != "Pacific/Kiritimati" || r.Month != month || r.Complete || r.MinSamples != maturity.DefaultConfig().MinSamples ||
		len(r.Providers) != 5 || r.Providers[len(r.Providers)-1].Provider != "council" || r.From.Format("-07:00") != "+14:00" {
		t.Errorf("report %+v", r)
	}
	resp, err := http.Get(base + apiv1.ReportPath("vic", month) + "?format=csv")
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || strings.Count(string(csv), "\r\n") != 7 {
		t.Errorf("CSV: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), csv)
	}
	if code := getJSON(t, base+apiv1.ReportPath("nowhere", month), nil); code != 404 {
		t.Errorf("unknown municipality: %d", code)
	}
	next := now.AddDate(0, 1, 1-now.Day()).Format("2006-01")
	var e apiv1.Error
	if code := getJSON(t, base+apiv1.ReportPath("vic", next), &e); code != 400 || !strings.Contains(e.Error, "(the current month in Pacific/Kiritimati)") {
		t.Errorf("next month: %d %q", code, e.Error)
	}

	kpictl := filepath.Join(t.TempDir(), "kpictl")
	if out, err := exec.Command("go", "build", "-C", "../../kpictl", "-o", kpictl, "./cmd/kpictl").CombinedOutput(); err != nil {
		t.Fatalf("build kpictl: %v\n%s", err, out)
	}
	out, err := exec.Command(kpictl, "report", "vic", month, "--evaluator-url", base).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "vic: SLA report for "+month) || !strings.Contains(string(out), "council (own)") {
		t.Errorf("kpictl report: %v\n%s", err, out)
	}
}
