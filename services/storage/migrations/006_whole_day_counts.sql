-- The counts of the whole days of the evaluator's windows, per series, as
-- an evaluator computed them from measurement_days, so that one that
-- starts (or another replica) reads them instead of counting every sample
-- of those days again (about 80 M at Catalonia size). A row holds only for
-- the same span (the whole days, in which windows, and the series left
-- out: span is a hash of all that and of the counting's version), the same
-- samples on those days (measurement_days only gains rows, so equal
-- samples are equal measurements) and the same SLA target (lower, target);
-- a reader uses no other. Partitioned by the day after the span's last
-- whole day, so the evaluator drops the partitions of days gone.
CREATE TABLE IF NOT EXISTS whole_day_counts (
    end_day UInt32,
    span UInt64,
    series UInt64,
    samples UInt64,
    lower UInt8,
    target Float64,
    service_hash UInt64,
    municipality_hash UInt64,
    samples_c UInt64,
    meeting_c UInt64,
    samples_p UInt64,
    meeting_p UInt64,
    last_ns Int64,
    short_samples_0 UInt64,
    short_samples_1 UInt64,
    short_samples_2 UInt64,
    short_samples_3 UInt64,
    short_meeting_0 UInt64,
    short_meeting_1 UInt64,
    short_meeting_2 UInt64,
    short_meeting_3 UInt64
) ENGINE = ReplacingMergeTree
PARTITION BY end_day
ORDER BY (span, series, samples, lower, target);
