-- Rollups for the evaluator, written by materialized views at insert time
-- so that an evaluation reads what its windows need and nothing older,
-- whatever the length of the stored history. The ingest service writes
-- only the event tables; ClickHouse fills these from each inserted block.

-- Measurements per series and day (UTC): how many (samples), and the
-- multiset of their (instant, value) pairs as a map from the pair to its
-- count (pointMap), which a merge adds up. A value is kept as an
-- order-preserving key (vKey: its IEEE 754 bits, sign bit flipped for
-- positives and every bit for negatives, -0 as 0), so the evaluator
-- counts the samples that meet the target in force at T with one integer
-- comparison, whatever target was in force when they arrived; instants
-- are compared only on the days a window edge cuts. sseries is part of
-- the key only so that it is not summed (it follows from series).
CREATE TABLE IF NOT EXISTS measurement_days (
    day Date,
    mseries UInt64,
    series UInt64,
    sseries UInt64,
    samples UInt64,
    pointMap Nested(timeKey Int64, vKey UInt64, count UInt32)
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, mseries, series, sseries);

-- Aliases are defined inside the expressions: the view's columns must be
-- exactly the table's, and ClickHouse 18.16 runs a view's query on the
-- inserted block only when it reads the table directly.
CREATE MATERIALIZED VIEW IF NOT EXISTS measurement_days_mv TO measurement_days AS
SELECT toDate(time) AS day, mseries, series, sseries, count() AS samples,
    arrayMap(x -> tupleElement(x, 1), groupArray((toInt64(toUInt32(time)) * 1000000000 + time_ns,
        if((reinterpretAsUInt64(reinterpretAsString(if(value = 0, 0., value))) AS bits) >= 9223372036854775808,
            bitNot(bits), bits + 9223372036854775808))) AS points) AS `pointMap.timeKey`,
    arrayMap(x -> tupleElement(x, 2), points) AS `pointMap.vKey`,
    arrayMap(x -> toUInt32(1), points) AS `pointMap.count`
FROM measurements
GROUP BY day, mseries, series, sseries;

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

-- Incidents per incident and publisher, all numbers: key is
-- cityHash64(municipality, service, incident), sseries the publisher's
-- service series, mseries the municipality. opened is the earliest
-- opening packed as instant * 2^35 + resolution target * 8 + priority
-- rank (critical 1, high 2, low 3, medium 4: the names' order), so one
-- minimum picks the earliest, then the shorter target, then the priority;
-- resolved is the earliest resolution. Both are 0 when there is none.
-- Earliest-of is the same however often an event is added, so events
-- stored before the view existed are added once more below, and a copy of
-- an event changes nothing.
CREATE TABLE IF NOT EXISTS incident_keys (
    mseries UInt64,
    key UInt64,
    sseries UInt64,
    opened AggregateFunction(minIf, Decimal(38, 0), UInt8),
    resolved AggregateFunction(minIf, Int64, UInt8)
) ENGINE = AggregatingMergeTree
ORDER BY (mseries, key, sseries);

CREATE MATERIALIZED VIEW IF NOT EXISTS incident_keys_mv TO incident_keys AS
SELECT cityHash64(municipality) AS mseries, cityHash64(municipality, service, incident) AS key,
    cityHash64(municipality, service, publisher) AS sseries,
    minIfState(toDecimal128(toInt64(toUInt32(time)) * 1000000000 + time_ns, 0) * 34359738368 + resolution_target_seconds * 8
        + indexOf(['critical', 'high', 'low', 'medium'], priority), type = 'cat.smartcity.incident.opened.v1') AS opened,
    minIfState(toInt64(toUInt32(time)) * 1000000000 + time_ns, type = 'cat.smartcity.incident.resolved.v1') AS resolved
FROM incidents
GROUP BY mseries, key, sseries;

INSERT INTO incident_keys
SELECT cityHash64(municipality) AS mseries, cityHash64(municipality, service, incident) AS key,
    cityHash64(municipality, service, publisher) AS sseries,
    minIfState(toDecimal128(toInt64(toUInt32(time)) * 1000000000 + time_ns, 0) * 34359738368 + resolution_target_seconds * 8
        + indexOf(['critical', 'high', 'low', 'medium'], priority), type = 'cat.smartcity.incident.opened.v1') AS opened,
    minIfState(toInt64(toUInt32(time)) * 1000000000 + time_ns, type = 'cat.smartcity.incident.resolved.v1') AS resolved
FROM incidents
GROUP BY mseries, key, sseries;

-- The incident id of each key, by month (UTC) of each opening: the
-- evaluator looks up the few incidents it returns in the months of their
-- earliest openings, never reading the ids of the others.
CREATE TABLE IF NOT EXISTS incident_names (
    month UInt32,
    key UInt64,
    incident String
) ENGINE = ReplacingMergeTree
PARTITION BY month
ORDER BY (key, incident);

CREATE MATERIALIZED VIEW IF NOT EXISTS incident_names_mv TO incident_names AS
SELECT toYYYYMM(time) AS month, cityHash64(municipality, service, incident) AS key, incident
FROM incidents
WHERE type = 'cat.smartcity.incident.opened.v1';

INSERT INTO incident_names
SELECT toYYYYMM(time) AS month, cityHash64(municipality, service, incident) AS key, incident
FROM incidents
WHERE type = 'cat.smartcity.incident.opened.v1';
