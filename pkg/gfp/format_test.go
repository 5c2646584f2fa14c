package gfp

import (
	"math/rand"
	"os"
	"strings"
	"testing"
)

// TestKnownDecodings pins the values the project exists for: what dmesg's
// "mode:0x..." means on each kernel generation.
func TestKnownDecodings(t *testing.T) {
	tests := []struct {
		file string
		mask uint64
		want string
	}{
		{"2.6.32", 0x20, "GFP_ATOMIC"},
		{"2.6.32", 0xd0, "GFP_KERNEL"},
		{"2.6.32", 0x0, "GFP_NOWAIT"},
		{"2.6.32", 0x80, "0x80"}, // 2.6.32 has no name for __GFP_FS alone
		{"3.10", 0x20, "GFP_ATOMIC"},
		{"3.10", 0x200d0, "GFP_USER"},
		{"3.10", 0x4020, "GFP_ATOMIC|GFP_COMP"},
		{"4.18", 0x480020, "GFP_ATOMIC"},
		{"4.18", 0x6000c0, "GFP_KERNEL"},
		{"4.18", 0x6200ca, "GFP_HIGHUSER_MOVABLE"},
		{"5.10", 0xa20, "GFP_ATOMIC"},
		{"5.10", 0xcc0, "GFP_KERNEL"},
		{"5.10", 0x400cc2, "GFP_KERNEL_ACCOUNT|__GFP_HIGHMEM"},
		{"5.10", 0x100cca, "GFP_HIGHUSER_MOVABLE"},
		{"5.15", 0x1100cca, "GFP_HIGHUSER_MOVABLE"},
		{"5.15", 0x100cca, "GFP_HIGHUSER|__GFP_MOVABLE"},
		{"6.1", 0xa20, "GFP_ATOMIC"},
		{"6.1", 0x140cca, "GFP_HIGHUSER_MOVABLE|__GFP_COMP"},
		{"6.8", 0x820, "GFP_ATOMIC"},
		{"6.8", 0xa20, "GFP_ATOMIC|0x200"},
		{"6.12-unresolved-enums", 0x820, "GFP_ATOMIC"},
		{"6.18", 0x820, "GFP_ATOMIC"},
		{"6.18", 0x400cc2, "GFP_KERNEL_ACCOUNT|__GFP_HIGHMEM"},
		{"6.18", 0x2800, "GFP_NOWAIT"},
		{"6.18", 0x800, "__GFP_KSWAPD_RECLAIM"},
		{"6.18", 0x0, "none"},
		{"6.18", 0x4000000, "0x4000000"},
	}
	tables := map[string]*Table{}
	for _, tc := range tests {
		tb, ok := tables[tc.file]
		if !ok {
			tb = loadFormatFile(t, "testdata/"+tc.file+"-mm_page_alloc.format")
			tables[tc.file] = tb
		}
		if got := tb.String(tc.mask); got != tc.want {
			t.Errorf("%s: String(%#x) = %q, want %q", tc.file, tc.mask, got, tc.want)
		}
	}
}

// TestBuiltinMatchesFormat checks each built-in table, written as kernel
// macro definitions, against the format file of the same version: the same
// name array must decode every mask the same way.
func TestBuiltinMatchesFormat(t *testing.T) {
	pairs := map[string]string{
		"2.6.32": "2.6.32", "3.10": "3.10", "4.18": "4.18", "5.4": "5.10", "5.15": "5.15",
		"6.1": "6.1", "6.8": "6.8", "6.12": "6.12-unresolved-enums", "6.18": "6.18",
	}
	rng := rand.New(rand.NewSource(1))
	for _, l := range layouts {
		file, ok := pairs[l.name]
		if !ok {
			continue
		}
		t.Run(l.name, func(t *testing.T) {
			bt, err := l.table()
			if err != nil {
				t.Fatal(err)
			}
			ft := loadFormatFile(t, "testdata/"+file+"-mm_page_alloc.format")
			if got, want := len(bt.Entries()), len(ft.Entries()); got != want {
				t.Errorf("built-in has %d entries, format file %d", got, want)
			}
			masks := append([]uint64(nil), goldenMasks...)
			for i := 0; i < 5000; i++ {
				masks = append(masks, uint64(rng.Uint32())&uint64(rng.Uint32())&0x3ffffff)
			}
			for _, m := range masks {
				if b, f := bt.String(m), ft.String(m); b != f {
					t.Errorf("%#x: built-in %q, format file %q", m, b, f)
				}
			}
		})
	}
}

func TestFromFormatErrors(t *testing.T) {
	data, err := os.ReadFile("testdata/6.12-unresolved-enums-mm_page_alloc.format")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, wantErr string
	}{
		{"unresolved enum", string(data), `unknown identifier "___GFP_DIRECT_RECLAIM_BIT"`},
		{"no call", `print fmt: "x=%d", REC->x`, "no __print_flags() call"},
		{"no names", `__print_flags(REC->gfp_flags, "|")`, "no flag names"},
		{"bad delim", `__print_flags(REC->gfp_flags, 1, {1, "A"})`, "delimiter"},
		{"bad entry", `__print_flags(REC->gfp_flags, "|", 7)`, "not {mask, name}"},
		{"unterminated", `__print_flags(REC->gfp_flags, "|", {1, "A"}`, "unterminated"},
		{"bad mask", `__print_flags(REC->gfp_flags, "|", {1 <<, "A"})`, `mask of A`},
		{"open string", `__print_flags(REC->gfp_flags, "|, {1, "A"})`, "unterminated literal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromFormat(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("FromFormat error = %v, want it to contain %q", err, tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "parsing print fmt: ") {
				t.Errorf("error %q lacks the parsing print fmt prefix", err)
			}
		})
	}
}

func TestFromFormatPrintFmtOnly(t *testing.T) {
	// Just the print fmt, no terminator entry, a zero-mask entry (a
	// compiled-out flag) and a non-gfp __print_flags before the gfp one.
	in := `"flags=%s gfp=%s", __print_flags(REC->flags, "|", {1, "X"}), ` +
		`(REC->gfp_mask) ? __print_flags(REC->gfp_mask, "|", {(unsigned long)(0x10u|0x40u), "K"}, ` +
		`{(unsigned long)0x10u, "W"}, {(unsigned long)0, "OFF"}) : "zero"`
	tb, err := FromFormat(in)
	if err != nil {
		t.Fatal(err)
	}
	for mask, want := range map[uint64]string{0x50: "K", 0x10: "W", 0x40: "OFF|0x40", 0: "zero"} {
		if got := tb.String(mask); got != want {
			t.Errorf("String(%#x) = %q, want %q", mask, got, want)
		}
	}
}

func TestTableMethods(t *testing.T) {
	old := loadFormatFile(t, "testdata/2.6.32-mm_page_alloc.format")
	cur := loadFormatFile(t, "testdata/6.18-mm_page_alloc.format")
	for _, tc := range []struct {
		tb   *Table
		name string
		want uint64
		ok   bool
	}{
		{old, "__GFP_HIGH", 0x20, true}, // printed as GFP_HIGH
		{old, "GFP_HIGH", 0x20, true},
		{old, "__GFP_WAIT", 0x10, true},
		{old, "__GFP_FS", 0x80, true}, // derived from GFP_KERNEL minus GFP_NOFS
		{old, "__GFP_ATOMIC", 0, false},
		{old, "GFP_ATOMIC", 0, false}, // a composite, even if a single bit here
		{old, "__GFP_DIRECT_RECLAIM", 0, false},
		{cur, "__GFP_DIRECT_RECLAIM", 0x400, true},
		{cur, "__GFP_DMA", 0x1, true},
		{cur, "__GFP_RECLAIM", 0, false},
		{cur, "__GFP_NO_OBJ_EXT", 0x1000000, true},
	} {
		got, ok := tc.tb.Bit(tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: Bit(%q) = %#x, %v; want %#x, %v", tc.tb.Source(), tc.name, got, ok, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		tb     *Table
		mask   uint64
		class  string
		atomic bool
	}{
		{old, 0x20, ClassAtomic, true},
		{old, 0x0, ClassNowait, true},
		{old, 0xd0, ClassKernel, false},
		{old, 0x200d2, ClassUser, false},
		{old, 0x10, ClassOther, false}, // GFP_NOIO
		{cur, 0x820, ClassAtomic, true},
		{cur, 0x2800, ClassNowait, true},
		{cur, 0xcc0, ClassKernel, false},
		{cur, 0x400cc0, ClassKernel, false},
		{cur, 0x140cca, ClassUser, false},
		{cur, 0xc40, ClassOther, false},    // GFP_NOFS
		{cur, 0x1c20ca, ClassNowait, true}, // GFP_TRANSHUGE_LIGHT never reclaims
	} {
		if got := tc.tb.Class(tc.mask); got != tc.class {
			t.Errorf("%s: Class(%#x) = %q, want %q", tc.tb.Source(), tc.mask, got, tc.class)
		}
		if got := tc.tb.Atomic(tc.mask); got != tc.atomic {
			t.Errorf("%s: Atomic(%#x) = %v, want %v", tc.tb.Source(), tc.mask, got, tc.atomic)
		}
	}
	if got := strings.Join(cur.Names(0x400cc2), "|"); got != cur.String(0x400cc2) {
		t.Errorf("Names and String disagree: %q vs %q", got, cur.String(0x400cc2))
	}
	if cur.Names(0) != nil {
		t.Errorf("Names(0) = %v, want nil", cur.Names(0))
	}
	noSleep := newTable([]Entry{{0x1, "A"}}, "", "", "test")
	if noSleep.Atomic(0) || noSleep.Class(0) != ClassOther {
		t.Errorf("table without a sleep bit: Atomic=%v Class=%q", noSleep.Atomic(0), noSleep.Class(0))
	}
}

func FuzzFromFormat(f *testing.F) {
	for _, path := range []string{"testdata/2.6.32-mm_page_alloc.format", "testdata/6.18-mm_page_alloc.format"} {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Add(`__print_flags(REC->gfp_flags, "|", {(unsigned long)((( gfp_t)0x20u)), "A"}) : "none"`)
	f.Fuzz(func(t *testing.T, in string) {
		tb, err := FromFormat(in)
		if err != nil {
			return
		}
		_ = tb.String(0xffffffffffffffff)
		_ = tb.Class(0x820)
	})
}
