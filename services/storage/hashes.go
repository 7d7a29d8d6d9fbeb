package storage

import (
	"math"
	"unsafe"

	"github.com/go-faster/city"
)

// Hash is ClickHouse's cityHash64 of strings, as the server computes the
// hash columns (series, sseries, mseries): CityHash64 v1.0.2 of each
// string, combined left to right with Hash128to64. The evaluator computes
// the hashes of what the catalogue names itself, instead of asking the
// server for them at every evaluation; the storage tests check it against
// both engines.
func Hash(parts ...string) uint64 {
	var h uint64
	for i, p := range parts {
		x := city.CH64(unsafe.Slice(unsafe.StringData(p), len(p))) // read only: no copy
		if i == 0 {
			h = x
			continue
		}
		h = hash128to64(h, x)
	}
	return h
}

// hash128to64 is CityHash's Hash128to64 of the 128-bit value (lo, hi),
// with which ClickHouse combines the hashes of the arguments of cityHash64.
func hash128to64(lo, hi uint64) uint64 {
	const mul = 0x9ddfea08eb382d69
	a := (lo ^ hi) * mul
	a ^= a >> 47
	b := (hi ^ a) * mul
	b ^= b >> 47
	return b * mul
}

// SeriesHash is the column series of a KPI series's measurements:
// cityHash64(municipality, service, kpi, publisher).
func SeriesHash(s Series) uint64 { return Hash(s.Municipality, s.Service, s.KPI, s.Publisher) }

// ServiceHash is the column sseries of a service's measurements from one
// publisher (and of its incident events): cityHash64(municipality,
// service, publisher).
func ServiceHash(s Series) uint64 { return Hash(s.Municipality, s.Service, s.Publisher) }

// MunicipalityHash is the column mseries: cityHash64(municipality).
func MunicipalityHash(m string) uint64 { return Hash(m) }

// ValueKey is the key under which measurement_days keeps a value: its
// IEEE 754 bits with the sign bit flipped for positive values and every
// bit flipped for negative ones, so keys compare as the values do; -0 is
// kept as 0. A value v meets a target t from above (v >= t) exactly when
// ValueKey(v) >= ValueKey(t).
func ValueKey(v float64) uint64 {
	if v == 0 {
		v = 0 // -0 too
	}
	b := math.Float64bits(v)
	if b >= 1<<63 {
		return ^b
	}
	return b + 1<<63
}
