package text

import (
	"math"
	"strconv"
	"strings"
)

// Decimals says how Bytes writes a size below 100 of its unit. Each
// command keeps the style its reports (and their golden files) have always
// had; the sizes themselves are computed once, here.
type Decimals int

const (
	// TrimZero writes one decimal and drops it when it rounds to zero:
	// "4 KiB", "1.5 KiB", "16.5 GiB", and "1 GiB" for 1.04 GiB (hugepages,
	// verify).
	TrimZero Decimals = iota
	// TrimWhole drops the decimal only for a whole number of units: "4 KiB",
	// "16.5 GiB", but "1.0 MiB" for 1.04 MiB (doctor).
	TrimWhole
	// Fixed always writes one decimal, as free -h does: "4.0 KiB",
	// "16.5 GiB" (watch, whose columns keep one width per unit).
	Fixed
)

// units are the binary prefixes Bytes uses, up to the 16 EiB of a uint64.
const units = "KMGTPE"

// Bytes writes n bytes the way operators read sizes: in the largest binary
// unit the size reaches, with no decimal from 100 units up ("144 MiB"), one
// decimal below as d says ("16.5 GiB"), and whole bytes below 1 KiB
// ("56 B").
func Bytes(n uint64, d Decimals) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	// Dividing by a power of two is exact in floating point.
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	unit := " " + units[i:i+1] + "iB"
	if v >= 100 {
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64) + unit
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	switch d {
	case TrimZero:
		s = strings.TrimSuffix(s, ".0")
	case TrimWhole:
		if v == math.Trunc(v) {
			s = strings.TrimSuffix(s, ".0")
		}
	}
	return s + unit
}
