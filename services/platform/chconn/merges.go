package chconn

import (
	"context"
	"fmt"
	"time"
)

// WaitNoMerges waits, up to limit, until the server has run no background
// merge for a second, and says how long it waited. Benchmarks call it
// after generating rows: a server merges freshly inserted rows for
// minutes, and what is measured meanwhile measures those merges too,
// while a server that has held its rows for a while merges only what is
// being inserted.
func (c *Conn) WaitNoMerges(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start, calmSince := time.Now(), time.Time{}
	for {
		var merges uint64
		if err := c.QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&merges); err != nil {
			return time.Since(start), fmt.Errorf("read system.merges: %w", err)
		}
		switch {
		case merges > 0:
			calmSince = time.Time{}
		case calmSince.IsZero():
			calmSince = time.Now()
		case time.Since(calmSince) >= time.Second:
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return time.Since(start), fmt.Errorf("background merges still running after %s", limit)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
