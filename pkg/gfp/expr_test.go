package gfp

import (
	"strings"
	"testing"
)

func eval(s string, env map[string]uint64) (uint64, error) {
	toks, err := tokenize(s)
	if err != nil {
		return 0, err
	}
	return evalExpr(toks, env)
}

func TestEvalExpr(t *testing.T) {
	env := map[string]uint64{"___GFP_IO_BIT": 6, "BIG": 1 << 40}
	tests := []struct {
		in   string
		want uint64
	}{
		{"0", 0},
		{"42", 42},
		{"0x20u", 0x20},
		{"0X1Fu", 0x1f},
		{"010", 8},
		{"0b101", 5},
		{"1UL << 40", 1 << 40},
		{"1ull << 63", 1 << 63},
		{"((((1UL))) << (10))|((((1UL))) << (11))", 0xc00},
		{"(( gfp_t)((((1UL))) << (___GFP_IO_BIT)))", 0x40},
		{"( unsigned long)((( gfp_t)0x20u)|(( gfp_t)0x800u))", 0x820},
		// "~" on a 32-bit gfp_t stays 32 bits wide...
		{"(unsigned long)(~(( gfp_t)0x1u))", 0xfffffffe},
		// ...while a signed int sign-extends when widened.
		{"(unsigned long)(~0)", 0xffffffffffffffff},
		{"(unsigned long)(-1)", 0xffffffffffffffff},
		{"(unsigned int)(-1)", 0xffffffff},
		{"(unsigned char)0x1ff", 0xff},
		{"(( gfp_t)(0x400u|0x800u)) & ~(( gfp_t)(0x400u|0x800u))", 0},
		{"0xcc0 & ~0xc00 | 0x400", 0x4c0},
		{"1 + 2 * 3", 7},
		{"(1 + 2) * 3", 9},
		{"7 / 2", 3},
		{"-7 / 2", 0xfffffffd}, // int arithmetic, truncation toward zero
		{"7 % 3", 1},
		{"1 << 2 + 1", 8},
		{"3 == 3", 1},
		{"3 != 3", 0},
		{"2 < 3 && 3 <= 3", 1},
		{"2 > 3 || 3 >= 4", 0},
		{"!0", 1},
		{"0x10 ^ 0x11", 1},
		{"1 ? 0x20 : 0x40", 0x20},
		{"0 ? 0x20 : 0x40", 0x40},
		{"-8 >> 1", 0xfffffffc}, // arithmetic shift of a negative int
		{"0x80000000 >> 31", 1}, // unsigned int, logical shift
		{"BIG | 1", 1<<40 | 1},
		{"'A'", 65},
		{"+5", 5},
	}
	for _, tc := range tests {
		got, err := eval(tc.in, env)
		if err != nil {
			t.Errorf("eval(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("eval(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

func TestEvalExprErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty expression"},
		{"FOO", `unknown identifier "FOO"`},
		{"(FOO) 1", `unknown identifier "FOO"`},
		{"1 / 0", "division by zero"},
		{"1 % 0", "division by zero"},
		{"1 << 32", "out of range"},
		{"1UL << 64", "out of range"},
		{"1 << -1", "out of range"},
		{"(1", `expected ")"`},
		{"1)", "unexpected )"},
		{"1 +", "unexpected end"},
		{"1 ? 2", `expected ":"`},
		{"0x", "malformed integer literal"},
		{"12abc", "malformed integer literal"},
		{"1.5", "malformed integer literal"},
		{"08", "malformed integer literal"},
		{"1uu", "malformed integer literal"},
		{"sizeof(int)", "unsupported"},
		{`"s"`, "unexpected"},
		{strings.Repeat("(", 1000) + "1" + strings.Repeat(")", 1000), "nested too deeply"},
		{strings.Repeat("~", 1000) + "1", "nested too deeply"},
	}
	for _, tc := range tests {
		_, err := eval(tc.in, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("eval(%q) error = %v, want it to contain %q", tc.in, err, tc.want)
		}
	}
}

func TestParseNumberTypes(t *testing.T) {
	tests := []struct {
		in    string
		width uint
		sgn   bool
	}{
		{"1", 32, true},
		{"0x80000000", 32, false}, // hex that does not fit int becomes unsigned int
		{"2147483648", 64, true},  // decimal skips unsigned int
		{"1u", 32, false},
		{"1l", 64, true},
		{"1UL", 64, false},
		{"1LL", 64, true},
		{"0xffffffffffffffff", 64, false},
	}
	for _, tc := range tests {
		v, err := parseNumber(tc.in)
		if err != nil {
			t.Errorf("parseNumber(%q): %v", tc.in, err)
			continue
		}
		if v.width != tc.width || v.signed != tc.sgn {
			t.Errorf("parseNumber(%q) type = %d-bit signed=%v, want %d-bit signed=%v", tc.in, v.width, v.signed, tc.width, tc.sgn)
		}
	}
}

func FuzzEvalExpr(f *testing.F) {
	for _, s := range []string{
		"(( gfp_t)((((1UL))) << (10))|((((1UL))) << (11)))",
		"((( gfp_t)0x20u)|(( gfp_t)0x200u)|(( gfp_t)0x800u))",
		"(unsigned long)(~(( gfp_t)0x1u)) & ~0",
		"1 ? -1 / 3 % 2 : 4 << 2",
		"(( gfp_t)((((1UL))) << (___GFP_IO_BIT)))",
		"'\\",
	} {
		f.Add(s)
	}
	env := map[string]uint64{"___GFP_IO_BIT": 6}
	f.Fuzz(func(t *testing.T, in string) {
		_, _ = eval(in, env) // must not panic, whatever the input
	})
}
