package contract

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecode checks that decoding never panics, that every outcome is either
// an event or a rejection with a reason of the closed set, and that accepted
// events survive a marshal/decode round trip.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seeds", "*.json"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("smartcity.sabadell.fcc-medi-ambient.measurement", b)
		f.Add("smartcity.sabadell.council.catalog", b)
	}
	known := map[Reason]bool{}
	for _, r := range Reasons {
		known[r] = true
	}
	r := Rules{Now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	f.Fuzz(func(t *testing.T, subject string, msg []byte) {
		ev, rej := Decode(subject, msg, r)
		if (ev == nil) == (rej == nil) {
			t.Fatalf("want exactly one of event and rejection, got %v and %v", ev, rej)
		}
		if rej != nil {
			if !known[rej.Reason] || rej.Message == "" {
				t.Fatalf("bad rejection %+v", rej)
			}
			return
		}
		b, err := Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, rej := Decode(subject, b, r); rej != nil && rej.Reason != ReasonTooLarge {
			t.Fatalf("re-encoded event rejected: %v\n%s", rej, b)
		}
	})
}
