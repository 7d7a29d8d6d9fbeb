-- Accepted events, one table per subject kind. The sorting key is the
-- event identity (municipality, publisher, id): ReplacingMergeTree keeps one
-- row per identity, the one with the highest version, and the ingest writes
-- version = 2^64-1 - stream sequence, so the first accepted copy stands.
-- Readers that must never count twice use FINAL.
CREATE TABLE IF NOT EXISTS {db}.measurements (
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
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(time)
ORDER BY (municipality, publisher, id);

CREATE TABLE IF NOT EXISTS {db}.catalog (
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

CREATE TABLE IF NOT EXISTS {db}.incidents (
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
