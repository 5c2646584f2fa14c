package gfp

import (
	"fmt"
	"strconv"
	"strings"
)

// kver is a kernel version, major.minor.patch; distribution suffixes such as
// "-754.el6.x86_64" or "-84-generic" are ignored.
type kver struct{ major, minor, patch int }

func (v kver) less(w kver) bool {
	if v.major != w.major {
		return v.major < w.major
	}
	if v.minor != w.minor {
		return v.minor < w.minor
	}
	return v.patch < w.patch
}

func (v kver) String() string {
	if v.patch == 0 && v.major >= 3 {
		return fmt.Sprintf("%d.%d", v.major, v.minor)
	}
	return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch)
}

// parseRelease reads the version from a uname -r string like
// "6.18.44-fc-v669", "2.6.32-754.el6.x86_64" or "5.15.0-84-generic".
func parseRelease(release string) (kver, error) {
	s := strings.TrimSpace(release)
	end := 0
	for end < len(s) && (s[end] == '.' || (s[end] >= '0' && s[end] <= '9')) {
		end++
	}
	parts := strings.Split(strings.Trim(s[:end], "."), ".")
	if len(parts) < 2 {
		return kver{}, fmt.Errorf("parsing kernel release %q: want major.minor", release)
	}
	var n [3]int
	for i := 0; i < len(parts) && i < 3; i++ {
		v, err := strconv.Atoi(parts[i])
		if err != nil {
			return kver{}, fmt.Errorf("parsing kernel release %q: %w", release, err)
		}
		n[i] = v
	}
	// 2.6.x kernels carry the real minor in the third number.
	return kver{n[0], n[1], n[2]}, nil
}
