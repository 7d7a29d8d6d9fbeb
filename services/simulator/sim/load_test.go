package sim

import (
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/contract"
)

func TestLoadInvalidShare(t *testing.T) {
	l, err := NewLoad(LoadOptions{Seed: 1, Municipalities: 70, InvalidShare: 0.05, RunID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	const n = 2400
	byReason := map[contract.Reason]int{}
	valid := 0
	ids := map[string]bool{}
	for i := int64(0); i < n; i++ {
		m := l.Message(i, now)
		if ids[m.ID] {
			t.Fatalf("message %d reuses id %s", i, m.ID)
		}
		ids[m.ID] = true
		_, rej := contract.Decode(m.Subject, m.Data, contract.Rules{Now: now})
		switch {
		case m.Invalid == "" && rej != nil:
			t.Fatalf("message %d meant valid: %v", i, rej)
		case m.Invalid == "":
			valid++
		case rej == nil:
			t.Fatalf("message %d meant %s is valid", i, m.Invalid)
		case rej.Reason != m.Invalid:
			t.Fatalf("message %d meant %s rejected for %s: %s", i, m.Invalid, rej.Reason, rej.Message)
		default:
			byReason[rej.Reason]++
		}
	}
	if valid != n-120 {
		t.Errorf("%d valid messages, want %d", valid, n-120)
	}
	for _, r := range contract.Reasons {
		if byReason[r] != 10 {
			t.Errorf("%s: %d messages, want 10", r, byReason[r])
		}
	}
	cat := l.Catalog(now)
	if len(cat) == 0 {
		t.Fatal("empty load catalogue")
	}
	for _, m := range cat {
		if _, rej := contract.Decode(m.Subject, m.Data, contract.Rules{Now: now}); rej != nil {
			t.Fatalf("catalogue message %s: %v", m.ID, rej)
		}
	}
	if got := LoadMunicipalityIDs(70)[69]; got != LoadMunicipalities[69-len(LoadMunicipalities)]+"-2" {
		t.Errorf("70th load municipality %q", got)
	}
}
