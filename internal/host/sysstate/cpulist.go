package sysstate

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseList parses the kernel's list format for CPUs and nodes ("0-3,8,
// 10-11" in cpulist, Cpus_allowed_list, has_memory; "" for none) into at
// most max entries: a range in a corrupt or hostile file must not make
// the caller allocate without bound.
func ParseList(s string, max int) ([]int, error) {
	var out []int
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("parsing list %q: bad entry %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("parsing list %q: bad range %q", s, part)
			}
		}
		if b >= max || len(out)+(b-a+1) > max {
			return nil, fmt.Errorf("parsing list %q: more than %d entries", s, max)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}
