package storage_test

import (
	"math"
	"slices"
	"testing"

	"github.com/assoliment/assoliment/services/storage"
)

// TestValueKeysOrderAsValues: keys compare as the values they keep, over
// the whole range of finite numbers, subnormal ones and both zeros too.
func TestValueKeysOrderAsValues(t *testing.T) {
	values := []float64{-math.MaxFloat64, -1e300, -42, -1.5, -1, -0x1p-1022, -5e-324, math.Copysign(0, -1), 0,
		5e-324, 0x1p-1022, 1e-300, 1, 1.5, 2.5, 42, 1e300, math.MaxFloat64}
	if !slices.IsSorted(values) {
		t.Fatal("test values out of order")
	}
	for i := 1; i < len(values); i++ {
		a, b := storage.ValueKey(values[i-1]), storage.ValueKey(values[i])
		if (values[i-1] == values[i]) != (a == b) || values[i-1] < values[i] && a >= b {
			t.Errorf("%v < %v but keys %d, %d", values[i-1], values[i], a, b)
		}
	}
	if storage.ValueKey(math.MaxFloat64) == math.MaxUint64 {
		t.Error("the largest key leaves no room for the key after it (targets that are lower is better)")
	}
}
