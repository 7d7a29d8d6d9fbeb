-- Accepted events, one table per subject kind. The sorting key is the
-- event identity (municipality, publisher, id): ReplacingMergeTree keeps one
-- row per identity, the one with the highest version, and the ingest writes
-- version = 2^64-1 - stream sequence, so the first accepted copy stands.
-- The ingest service looks identities up before inserting, so a second copy
-- is stored only in the rare race of two replicas handling two copies at
-- once; it then records the identity in `duplicates` and merges the
-- partition. Readers of the small tables always use FINAL; readers of
-- measurements use FINAL while `duplicates` has unresolved rows.
CREATE TABLE IF NOT EXISTS measurements (
    municipality String,
    publisher String,
    id String,
    service String,
    kpi String,
    value Float64,
    time DateTime('UTC'),
    time_ms UInt16,
    source String,
    stream_seq UInt64,
    ingested_at DateTime('UTC'),
    version UInt64,
    -- hashes of one KPI series of one publisher, of its service and
    -- publisher, and of its municipality: aggregation groups by numbers
    series UInt64 MATERIALIZED cityHash64(municipality, service, kpi, publisher),
    sseries UInt64 MATERIALIZED cityHash64(municipality, service, publisher),
    mseries UInt64 MATERIALIZED cityHash64(municipality)
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(time)
ORDER BY (municipality, publisher, id);

CREATE TABLE IF NOT EXISTS catalog (
    municipality String,
    publisher String,
    id String,
    type String,
    service String,
    kpi String,
    time DateTime('UTC'),
    time_ms UInt16,
    name String,
    area String,
    delivery String,
    provider String,
    reporting_interval_seconds UInt32,
    open_data UInt8,
    unit String,
    direction String,
    target Float64,
    objective Float64,
    source String,
    stream_seq UInt64,
    ingested_at DateTime('UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (municipality, publisher, id);

CREATE TABLE IF NOT EXISTS incidents (
    municipality String,
    publisher String,
    id String,
    type String,
    service String,
    incident String,
    priority String,
    resolution_target_seconds UInt32,
    time DateTime('UTC'),
    time_ms UInt16,
    source String,
    stream_seq UInt64,
    ingested_at DateTime('UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(time)
ORDER BY (municipality, publisher, id);

-- Identities found stored twice (see above); resolved once merged.
CREATE TABLE IF NOT EXISTS duplicates (
    municipality String,
    publisher String,
    id String,
    detected_at DateTime('UTC'),
    resolved UInt8,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (municipality, publisher, id);
