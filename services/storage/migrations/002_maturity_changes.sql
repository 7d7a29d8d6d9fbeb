-- Level history written by the evaluator: one row per level change.
CREATE TABLE IF NOT EXISTS maturity_changes (
    municipality String,
    from_level UInt8,
    to_level UInt8,
    evaluated_at DateTime('UTC'),
    failing String,
    recorded_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(recorded_at)
PARTITION BY toYYYYMM(evaluated_at)
ORDER BY (municipality, evaluated_at);
