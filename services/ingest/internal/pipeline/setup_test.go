package pipeline

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/platform/testenv"
)

// Setup leaves streams that are already so configured alone (replicas
// start together), and brings a stream whose setting differs back to the
// configuration.
func TestSetupUpdatesOnlyWhatDiffers(t *testing.T) {
	ctx := context.Background()
	js := testenv.JetStream(t, testenv.NATS(t))
	cfg := testConfig()
	cfg.StreamMaxBytes, cfg.DeadLetterMaxAge, cfg.DeadLetterMaxBytes = 1<<30, 24*time.Hour, 1<<28
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := Setup(ctx, js, cfg, log); err != nil {
		t.Fatal(err)
	}
	for _, want := range cfg.Streams() {
		s, err := js.Stream(ctx, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if StreamNeedsUpdate(want, s.CachedInfo().Config) {
			t.Errorf("%s: as created, still said to need an update: %+v", want.Name, s.CachedInfo().Config)
		}
	}
	// Changed by hand: brought back by the next start.
	main := cfg.Streams()[1]
	changed := main
	changed.MaxBytes = 1 << 20
	if _, err := js.UpdateStream(ctx, changed); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, main.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !StreamNeedsUpdate(main, s.CachedInfo().Config) {
		t.Fatal("a smaller max_bytes not seen as a difference")
	}
	if _, err := Setup(ctx, js, cfg, log); err != nil {
		t.Fatal(err)
	}
	if s, err = js.Stream(ctx, main.Name); err != nil || s.CachedInfo().Config.MaxBytes != main.MaxBytes {
		t.Fatalf("max_bytes not brought back: %v", err)
	}
}
