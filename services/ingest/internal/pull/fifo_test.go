package pull

import "testing"

// TestFifoDoesNotGrowWhileNeverEmpty: a queue that always holds about 100
// messages while a million pass through keeps a small array, and hands the
// messages out in order.
func TestFifoDoesNotGrowWhileNeverEmpty(t *testing.T) {
	var q fifo
	msgs := make([]Msg, 1_000_000)
	for i := range 100 {
		q.push(&msgs[i])
	}
	next := 0
	for i := 100; i < len(msgs); i++ {
		q.push(&msgs[i])
		if m := q.pop(); m != &msgs[next] {
			t.Fatalf("message %d out of order", next)
		}
		next++
	}
	if c := cap(q.items); c > 4096 {
		t.Fatalf("array of %d for 101 messages held", c)
	}
	for ; next < len(msgs); next++ {
		if m := q.pop(); m != &msgs[next] {
			t.Fatalf("message %d out of order", next)
		}
	}
	if q.pop() != nil {
		t.Fatal("a message from an empty queue")
	}
}
