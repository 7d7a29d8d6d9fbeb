// Package sim generates the simulator's events without any I/O: a set of
// Catalan municipalities (Designed) with their service catalogues, SLAs,
// measurements with daily patterns and noise, and incidents, each
// municipality designed to land on a given maturity level; and benchmark
// load with a chosen share of invalid messages (NewLoad).
//
// Every random choice is a hash of the seed and of what is decided (the
// municipality, service, KPI and time slot), so the same seed and start
// instant always give byte-identical events, any time range can be
// generated on its own (live mode generates it piece by piece), and a
// re-run repeats the ids of the slots both runs cover, so the platform
// deduplicates it.
//
// Use Generate or New(...).History() for a whole history, Observations for
// a time range, Encode for publishable bytes.
package sim
