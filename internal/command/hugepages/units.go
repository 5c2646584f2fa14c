package hugepages

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// FormatBytes writes a size the way operators read them: "4 KiB",
// "144 MiB", "1.1 GiB", "16.5 GiB". Below 100 units one decimal is kept
// unless it is zero.
func FormatBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 || v >= 100 {
		return fmt.Sprintf("%.0f %s", math.Round(v), units[i])
	}
	s := strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0")
	return s + " " + units[i]
}

// FormatPageSize names a page size in kB: "4 KiB", "2 MiB", "1 GiB".
func FormatPageSize(kb uint64) string { return FormatBytes(kb << 10) }

// ParseSize parses "64G", "512MiB", "1.5T", "2048k" or plain bytes. Units
// are binary (K = 1024) as in vm and limits settings.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') && t[i-1] != '.' {
		i--
	}
	num, unit := strings.TrimSpace(t[:i]), strings.ToUpper(strings.TrimSpace(t[i:]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want K, M, G, T or P)", s, t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsNaN(v) {
		return 0, fmt.Errorf("size %q: not a non-negative number", s)
	}
	b := v * float64(uint64(1)<<sh)
	if b >= math.MaxUint64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return uint64(math.Round(b)), nil
}
