package storage_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/assoliment/assoliment/services/storage"
)

// TestKeptSpans: a span's identity changes with its whole days, the
// windows they lie in and the series left out (not with their order), and
// not while T moves within a day.
func TestKeptSpans(t *testing.T) {
	span := func(at time.Time, w time.Duration) storage.Span {
		return storage.Span{At: at, W: w, From: at.Add(-2 * w), To: at}
	}
	w := 30 * day
	base := storage.KeptSpanOf(span(T, w), []uint64{3, 1})
	if got := storage.KeptSpanOf(span(T.Add(time.Hour), w), []uint64{1, 3}); got != base {
		t.Errorf("an hour later, series in another order: %+v, want %+v", got, base)
	}
	if want := uint32(T.Truncate(day).Unix() / 86400); base.End != want {
		t.Errorf("end day %d, want %d", base.End, want)
	}
	for name, other := range map[string]storage.KeptSpan{
		"a day later":         storage.KeptSpanOf(span(T.Add(day), w), []uint64{1, 3}),
		"other windows":       storage.KeptSpanOf(span(T, w+day), []uint64{1, 3}),
		"other series out":    storage.KeptSpanOf(span(T, w), []uint64{1}),
		"at midnight, no cut": storage.KeptSpanOf(span(T.Truncate(day), w), []uint64{1, 3}),
	} {
		if other.ID == base.ID {
			t.Errorf("%s: same span %+v", name, other)
		}
	}
	parts := []storage.Partition{{Name: "20780"}, {Name: "20787"}, {Name: "20788"}, {Name: "not a day"}}
	if got := storage.KeptPartitionsBefore(parts, 20788); !slices.Equal(got, []uint32{20780, 20787}) {
		t.Errorf("partitions before 20788: %v", got)
	}
}

// compareKeptWholeDays writes, reads back and drops kept counts of whole
// days on both engines.
func compareKeptWholeDays(t *testing.T, ss []side) {
	t.Helper()
	ctx := context.Background()
	old, now := storage.KeptSpan{ID: 7, End: 20700}, storage.KeptSpan{ID: 8, End: 20787}
	k := storage.KeptCounts{SeriesCounts: storage.SeriesCounts{Series: 42, ServiceHash: 1, MunicipalityHash: 2, SamplesC: 10, MeetingC: 9,
		SamplesP: 8, MeetingP: 7, Last: T.UnixNano(), ShortCounts: storage.ShortCounts{ShortSamples0: 1, ShortSamples1: 2, ShortSamples2: 3,
			ShortSamples3: 4, ShortMeeting1: 1, ShortMeeting2: 2, ShortMeeting3: 3}},
		Samples: 18, Lower: 1, Target: 2.5}
	bare := k
	bare.Series, bare.ShortCounts = 43, storage.ShortCounts{}
	for _, s := range ss {
		for _, c := range []struct {
			span storage.KeptSpan
			ks   []storage.KeptCounts
		}{{old, []storage.KeptCounts{k}}, {now, []storage.KeptCounts{k, bare}}} {
			if err := s.e.InsertColumns(ctx, storage.WholeDayCounts, storage.KeptCountsColumns, storage.KeptCountsValues(c.span, c.ks)); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
		}
	}
	if got := same[storage.KeptCounts](t, "KeptWholeDays", ss, storage.KeptWholeDays(now), false); !reflect.DeepEqual(got, []storage.KeptCounts{k, bare}) {
		t.Errorf("kept counts read back: %+v", got)
	}
	parts := same[storage.Partition](t, "KeptPartitions", ss, storage.KeptPartitions(), false)
	if got := storage.KeptPartitionsBefore(parts, now.End); !slices.Equal(got, []uint32{old.End}) {
		t.Fatalf("partitions %+v: before %d %v", parts, now.End, got)
	}
	exec2(t, "DropKeptPartition", ss, storage.DropKeptPartition(old.End))
	same[storage.KeptCounts](t, "KeptWholeDays", ss, storage.KeptWholeDays(old), true)
	if got := same[storage.Partition](t, "KeptPartitions", ss, storage.KeptPartitions(), false); len(got) != 1 || got[0].Name != "20787" {
		t.Errorf("partitions after the drop: %+v", got)
	}
}

// TestShortCounts: window i's counts are its columns, and sums add each.
func TestShortCounts(t *testing.T) {
	c := storage.ShortCounts{ShortSamples0: 1, ShortSamples1: 2, ShortSamples2: 3, ShortSamples3: 4,
		ShortMeeting0: 5, ShortMeeting1: 6, ShortMeeting2: 7, ShortMeeting3: 8}
	c.Add(c)
	for i := range storage.MaxShortWindows {
		if s, m := c.Short(i); s != uint64(2*(i+1)) || m != uint64(2*(i+5)) {
			t.Errorf("window %d: %d, %d", i, s, m)
		}
	}
	if s, m := c.Short(storage.MaxShortWindows); s != 0 || m != 0 {
		t.Errorf("past the last window: %d, %d", s, m)
	}
}
