package doctor

import (
	"os"
	"strings"
	"testing"
)

func FuzzParseDistances(f *testing.F) {
	f.Add("10 21", 2)
	f.Add("10", 1)
	f.Add("10 21 x", 2)
	f.Fuzz(func(t *testing.T, s string, n int) {
		row, err := parseDistances(s, n)
		if err == nil && len(row) != n {
			t.Errorf("%d distances, want %d", len(row), n)
		}
	})
}

func FuzzParseChoice(f *testing.F) {
	for _, s := range []string{"always [madvise] never", "[always] defer defer+madvise madvise never", "always madvise never", "[]", "][", "[a] [b]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseChoice(s)
		if err == nil && (v == "" || strings.ContainsAny(v, "[]")) {
			t.Errorf("choice %q from %q", v, s)
		}
	})
}

func FuzzParseUptime(f *testing.F) {
	for _, s := range []string{"2140.57 4120.33\n", "up", "", "NaN 1", "-1 0", "1e300 0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := parseUptime(s); err == nil && d < 0 {
			t.Errorf("uptime %v from %q", d, s)
		}
	})
}

func FuzzParsePasswd(f *testing.F) {
	b, _ := os.ReadFile("testdata/passwd")
	f.Add(string(b), uint64(26))
	f.Add("a:x:99999999999999999999:1\n::0\n", uint64(0))
	f.Fuzz(func(t *testing.T, s string, uid uint64) {
		users := parsePasswd(s, []uint64{uid})
		if len(users) > 1 {
			t.Errorf("%d users for one uid", len(users))
		}
	})
}
