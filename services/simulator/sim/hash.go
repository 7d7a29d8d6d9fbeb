package sim

import (
	"math"
)

// hasher is a small deterministic hash (FNV-1a with a splitmix64 finish)
// over a sequence of parts. Every random choice of the simulator is a hash
// of the seed and of what is being decided, so any event can be generated
// on its own, in any order, and always comes out the same.
type hasher struct{ h uint64 }

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func newHasher(seed int64) hasher {
	h := hasher{h: fnvOffset}
	return h.int(seed)
}

func (h hasher) str(s string) hasher {
	for i := 0; i < len(s); i++ {
		h.h ^= uint64(s[i])
		h.h *= fnvPrime
	}
	h.h ^= 0xff // separator, so ("ab","c") and ("a","bc") differ
	h.h *= fnvPrime
	return h
}

func (h hasher) int(v int64) hasher {
	u := uint64(v)
	for i := 0; i < 8; i++ {
		h.h ^= u & 0xff
		h.h *= fnvPrime
		u >>= 8
	}
	return h
}

// sum finishes the hash.
func (h hasher) sum() uint64 {
	z := h.h + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit is a uniform number in [0, 1).
func (h hasher) unit() float64 {
	return float64(h.sum()>>11) / (1 << 53)
}

// gauss is a standard normal number (Box-Muller over two hashed uniforms).
func (h hasher) gauss() float64 {
	u1 := h.str("g1").unit()
	u2 := h.str("g2").unit()
	if u1 < 1e-12 {
		u1 = 1e-12
	}
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}
