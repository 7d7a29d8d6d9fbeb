-- Rollups for the evaluator, written by materialized views at insert time
-- so that an evaluation reads what its windows need and nothing older,
-- whatever the length of the stored history. The ingest service writes
-- only the event tables; ClickHouse fills these from each inserted block.

-- Measurements per series and day (UTC). samples and last are the count
-- and latest instant (nanoseconds); value_list holds every value, so the
-- evaluator counts the samples that meet the target in force at T, whatever
-- target was in force when they arrived; point_list holds (instant, value)
-- pairs, read only for the days a window edge cuts. A merge adds up the
-- rows of one series and day; a reader never assumes it has happened.
CREATE TABLE IF NOT EXISTS measurement_days (
    day Date,
    series UInt64,
    sseries UInt64,
    mseries UInt64,
    samples AggregateFunction(count),
    last AggregateFunction(max, Int64),
    value_list AggregateFunction(groupArray, Float64),
    point_list AggregateFunction(groupArray, Tuple(Int64, Float64))
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, mseries, series);

CREATE MATERIALIZED VIEW IF NOT EXISTS measurement_days_mv TO measurement_days AS
SELECT toDate(time) AS day, series, sseries, mseries,
    countState() AS samples,
    maxState(toInt64(toUInt32(time)) * 1000000000 + time_ns) AS last,
    groupArrayState(value) AS value_list,
    groupArrayState((toInt64(toUInt32(time)) * 1000000000 + time_ns, value)) AS point_list
FROM measurements
GROUP BY day, series, sseries, mseries;

-- From which day measurement_days holds every measurement: rows stored
-- before its view existed are not in it (a sum cannot be back-filled
-- twice without counting twice), so the evaluator reads the days before
-- from_day from measurements. A database without measurements is covered
-- from the start; any other from two days after the view was created
-- (an event is at most 5 minutes ahead of the clock that accepted it).
-- Each run of this migration adds a row after the view exists, and
-- every such row is true: readers take the earliest.
CREATE TABLE IF NOT EXISTS rollup_coverage (
    rollup String,
    from_day Date,
    recorded_at DateTime('UTC')
) ENGINE = MergeTree
ORDER BY rollup;

INSERT INTO rollup_coverage
SELECT 'measurement_days', if((SELECT count() FROM measurements) = 0, toDate('1970-01-01'), today() + 2), now();

-- Incidents per (municipality, service, incident, publisher): the earliest
-- opening as (instant, resolution target, priority) and the earliest
-- resolution, both 0 when there is none. Earliest-of is the same however
-- often an event is added, so events stored before the view existed are
-- added once more below, and a copy of an event changes nothing.
CREATE TABLE IF NOT EXISTS incident_keys (
    municipality String,
    service String,
    incident String,
    publisher String,
    sseries UInt64,
    opened AggregateFunction(minIf, Tuple(Int64, UInt32, String), UInt8),
    resolved AggregateFunction(minIf, Int64, UInt8)
) ENGINE = AggregatingMergeTree
ORDER BY (municipality, service, incident, publisher);

CREATE MATERIALIZED VIEW IF NOT EXISTS incident_keys_mv TO incident_keys AS
SELECT municipality, service, incident, publisher, cityHash64(municipality, service, publisher) AS sseries,
    minIfState((toInt64(toUInt32(time)) * 1000000000 + time_ns, resolution_target_seconds, priority),
        type = 'cat.smartcity.incident.opened.v1') AS opened,
    minIfState(toInt64(toUInt32(time)) * 1000000000 + time_ns, type = 'cat.smartcity.incident.resolved.v1') AS resolved
FROM incidents
GROUP BY municipality, service, incident, publisher;

INSERT INTO incident_keys
SELECT municipality, service, incident, publisher, cityHash64(municipality, service, publisher) AS sseries,
    minIfState((toInt64(toUInt32(time)) * 1000000000 + time_ns, resolution_target_seconds, priority),
        type = 'cat.smartcity.incident.opened.v1') AS opened,
    minIfState(toInt64(toUInt32(time)) * 1000000000 + time_ns, type = 'cat.smartcity.incident.resolved.v1') AS resolved
FROM incidents
GROUP BY municipality, service, incident, publisher;
