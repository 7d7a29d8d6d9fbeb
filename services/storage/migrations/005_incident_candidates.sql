-- What an evaluation needs to find the incidents it looks at without
-- reading every incident of the history (incident_keys keeps them all):
-- an incident the rules look at at T is due in C = [T-w, T) by one of its
-- openings, or not resolved before T. The second means that a publisher
-- that opened it has no resolution before T: either it resolved at or
-- after T, or it never resolved it. Both tables below are read by time or
-- by what is still open, so their reads do not grow with history; the
-- evaluator then reads the full rows of those incidents only from
-- incident_keys. Columns as in incident_keys.

-- The deadline of every opening (kind 1: instant + resolution target) and
-- the instant of every resolution (kind 2), in nanoseconds, ordered by
-- time: "due in C" and "resolved at or after T" are ranges of the key.
-- A row stored twice only names its incident twice.
CREATE TABLE IF NOT EXISTS incident_times (
    kind UInt8,
    at Int64,
    mseries UInt64,
    key UInt64,
    sseries UInt64
) ENGINE = MergeTree
ORDER BY (kind, at);

CREATE MATERIALIZED VIEW IF NOT EXISTS incident_times_mv TO incident_times AS
SELECT toUInt8(if(type = 'cat.smartcity.incident.opened.v1', 1, 2)) AS kind,
    toInt64(toUInt32(time)) * 1000000000 + time_ns + if(kind = 1, toInt64(resolution_target_seconds) * 1000000000, 0) AS at,
    cityHash64(municipality) AS mseries, cityHash64(municipality, service, incident) AS key,
    cityHash64(municipality, service, publisher) AS sseries
FROM incidents;

INSERT INTO incident_times
SELECT toUInt8(if(type = 'cat.smartcity.incident.opened.v1', 1, 2)) AS kind,
    toInt64(toUInt32(time)) * 1000000000 + time_ns + if(kind = 1, toInt64(resolution_target_seconds) * 1000000000, 0) AS at,
    cityHash64(municipality) AS mseries, cityHash64(municipality, service, incident) AS key,
    cityHash64(municipality, service, publisher) AS sseries
FROM incidents;

-- Per incident and publisher, its openings minus its resolutions. An
-- insert that opens and resolves an incident adds no row; a merge adds the
-- rows up and drops those that come to 0, so what stays is, for
-- the most part, what is still open: a publisher that opened an incident
-- and never resolved it has a positive balance. A row counted more than
-- once (the fill below run again, or racing the view) keeps its sign for
-- such a publisher; any other row it leaves is one more incident read, not
-- a wrong one.
CREATE TABLE IF NOT EXISTS incident_open (
    mseries UInt64,
    key UInt64,
    sseries UInt64,
    balance Int64
) ENGINE = SummingMergeTree
ORDER BY (mseries, key, sseries);

CREATE MATERIALIZED VIEW IF NOT EXISTS incident_open_mv TO incident_open AS
SELECT cityHash64(municipality) AS mseries, cityHash64(municipality, service, incident) AS key,
    cityHash64(municipality, service, publisher) AS sseries,
    sum(if(type = 'cat.smartcity.incident.opened.v1', toInt64(1), toInt64(-1))) AS balance
FROM incidents
GROUP BY mseries, key, sseries
HAVING balance != 0;

INSERT INTO incident_open
SELECT cityHash64(municipality) AS mseries, cityHash64(municipality, service, incident) AS key,
    cityHash64(municipality, service, publisher) AS sseries,
    sum(if(type = 'cat.smartcity.incident.opened.v1', toInt64(1), toInt64(-1))) AS balance
FROM incidents
GROUP BY mseries, key, sseries
HAVING balance != 0
