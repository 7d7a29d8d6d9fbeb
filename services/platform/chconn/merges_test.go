package chconn_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/platform/testenv"
)

// TestWaitNoMerges: on the test server (merges of other tests' rows come
// and go) it returns once a second has passed without one, having waited
// at least that second; an ended context stops it with its error.
func TestWaitNoMerges(t *testing.T) {
	c := testenv.ClickHouse(t)
	ctx := context.Background()
	start := time.Now()
	waited, err := c.WaitNoMerges(ctx, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if waited < time.Second || time.Since(start) < time.Second {
		t.Fatalf("returned after %s, before a second without a merge", waited)
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.WaitNoMerges(ended, time.Minute); !errors.Is(err, context.Canceled) {
		t.Fatalf("with an ended context: %v, want context.Canceled", err)
	}
}
