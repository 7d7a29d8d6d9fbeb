package service_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
	evalconfig "github.com/assoliment/assoliment/services/evaluator/config"
	"github.com/assoliment/assoliment/services/evaluator/internal/maturity"
	evaluator "github.com/assoliment/assoliment/services/evaluator/service"
	"github.com/assoliment/assoliment/services/platform/testenv"
	"github.com/assoliment/assoliment/services/storage"
	"github.com/assoliment/assoliment/services/storage/storagetest"
)

// TestInventedMunicipalities stores one real municipality and measurements
// and incidents for 12,000 invented ones (about what made every evaluation
// fail when their names went into the SQL text). The invented ones get no
// API entry and no series, are counted in one metric, and evaluations keep
// succeeding with the real one's verdict unchanged.
func TestInventedMunicipalities(t *testing.T) {
	const invented = 12000
	ns := testenv.NATS(t)
	ch := testenv.ClickHouse(t)
	db := storage.NewConn(ch)
	ctx := context.Background()
	if err := storage.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Second)
	evs, _ := eventsFor(maturity.SampleInput("vic", 4, at))
	storagetest.Store(t, db, evs...)
	var flood []*contract.Event
	for i := range invented {
		m := fmt.Sprintf("inventat-%05d", i)
		flood = append(flood,
			storagetest.Event(m, "hostil", at.Add(-time.Hour), &contract.KPIMeasured{Service: "s", KPI: "k", Value: 1}),
			storagetest.Event(m, "hostil", at.Add(-time.Hour), &contract.IncidentOpened{Service: "s", Incident: "i", Priority: "high", ResolutionTargetSeconds: 60}))
	}
	storagetest.Store(t, db, flood...)

	cfg, err := evalconfig.Parse([]string{"--nats-url", ns.ClientURL(), "--clickhouse-database", ch.Database,
		"--clickhouse-addr", testenv.ClickHouseAddr(), "--http-addr", testenv.FreeAddr(t), "--evaluation-interval", "1s", "--log-level", "warn"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, "evaluator", func(ctx context.Context) error { return evaluator.Run(ctx, cfg, io.Discard) })
	base := "http://" + cfg.HTTPAddr
	var list struct {
		Municipalities []struct {
			Municipality string `json:"municipality"`
			Level        int    `json:"level"`
		} `json:"municipalities"`
	}
	testenv.Eventually(t, "first evaluation", 60*time.Second, func() bool { return getJSON(t, base+"/api/v1/municipalities", &list) == 200 })
	if len(list.Municipalities) != 1 || list.Municipalities[0].Municipality != "vic" || list.Municipalities[0].Level != 4 {
		t.Fatalf("listed %+v; want vic alone, at level 4", list.Municipalities)
	}
	if code := getJSON(t, base+"/api/v1/municipalities/inventat-00001/assessment", nil); code != 404 {
		t.Errorf("invented municipality: %d, want 404", code)
	}
	if code := getJSON(t, base+"/api/v1/municipalities/inventat-00001/assessment?at="+at.Format(time.RFC3339), nil); code != 404 {
		t.Errorf("invented municipality with ?at=: %d, want 404", code)
	}
	metrics := func() string {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// Several evaluations later, none has failed.
	testenv.Eventually(t, "three evaluations", 30*time.Second, func() bool {
		return strings.Contains(metrics(), "smartcity_evaluation_duration_seconds_count 3\n")
	})
	m := metrics()
	if strings.Contains(m, "inventat") {
		t.Error("an invented municipality has series")
	}
	for _, line := range []string{
		fmt.Sprintf("smartcity_unknown_municipality_measurements %d\n", invented),
		"smartcity_evaluation_errors_total 0\n",
		`smartcity_maturity_level{municipality="vic"} 4` + "\n",
	} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	promtool(t, []byte(m))
}
