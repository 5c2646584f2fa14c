package gfp

import (
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/internal/host/rawbtf"
)

// members lists an enum's members in the order a map gives them: any
// order, as FromEnum must accept.
func members(values map[string]uint64) []EnumMember {
	var out []EnumMember
	for name, v := range values {
		out = append(out, EnumMember{name, v})
	}
	return out
}

func TestFromEnumSynthetic(t *testing.T) {
	enum := members(enums612)
	bt, err := FromEnum(enum)
	if err != nil {
		t.Fatal(err)
	}
	if bt.Source() != "kernel BTF" {
		t.Errorf("Source() = %q", bt.Source())
	}
	// The enum of 6.14+ and the newest composite definitions give exactly
	// the name array of the real 6.18 format file.
	ft := loadFormatFile(t, "testdata/6.18-mm_page_alloc.format")
	if got, want := bt.Entries(), ft.Entries(); !equalEntries(got, want) {
		t.Errorf("FromEnum entries differ from the 6.18 format file:\ngot  %v\nwant %v", got, want)
	}
	// For an older release GFP_NOWAIT lacks __GFP_NOWARN.
	old, err := fromEnum(enum, kver{6, 12, 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := old.String(0x800); got != "GFP_NOWAIT" {
		t.Errorf("6.12 String(0x800) = %q, want GFP_NOWAIT", got)
	}
}

func equalEntries(a, b []Entry) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFromEnumErrors(t *testing.T) {
	if _, err := FromEnum(nil); !errors.Is(err, errNoGFPEnum) {
		t.Errorf("FromEnum(nil): %v, want errNoGFPEnum", err)
	}
	_, err := FromEnum(members(map[string]uint64{"MIGRATE_MOVABLE": 1}))
	if !errors.Is(err, errNoGFPEnum) {
		t.Errorf("FromEnum of another enum: %v, want errNoGFPEnum", err)
	}
	// The bits without the marker are not taken for the GFP enum.
	_, err = FromEnum(members(map[string]uint64{"___GFP_HIGHMEM_BIT": 1, "___GFP_NOWARN_BIT": 13}))
	if !errors.Is(err, errNoGFPEnum) {
		t.Errorf("FromEnum without %s: %v, want errNoGFPEnum", EnumMarker, err)
	}
	_, err = FromEnum(members(map[string]uint64{"___GFP_DMA_BIT": 0, "___GFP_LAST_BIT": 1}))
	if err == nil || !strings.Contains(err.Error(), "lacks") {
		t.Errorf("FromEnum with a truncated enum: %v", err)
	}
}

// TestFromEnumRunningKernel compares the table built from the running
// kernel's GFP bit enum with the kernel's own format file. The format's
// table may lack bits of the enum (6.12 has no name for __GFP_NO_OBJ_EXT):
// those are compared apart, and Load must name them from BTF.
func TestFromEnumRunningKernel(t *testing.T) {
	raw, err := rawbtf.Open(rawbtf.KernelPath)
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	defer raw.Close()
	id := raw.EnumWithValue(EnumMarker)
	if id == 0 {
		t.Skip("kernel older than 6.10: no ___GFP_*_BIT enum")
	}
	rawMembers, err := raw.EnumMembers(id)
	if err != nil {
		t.Fatal(err)
	}
	var enum []EnumMember
	for _, m := range rawMembers {
		enum = append(enum, EnumMember(m))
	}
	bt, err := FromEnum(enum)
	if err != nil {
		t.Fatal(err)
	}
	dir, data, err := readTracefsFormat()
	if err != nil {
		t.Skipf("tracefs format not readable (needs root and a mounted tracefs): %v", err)
	}
	ft, err := FromFormat(string(data))
	if err != nil {
		t.Fatal(err)
	}
	// The enum's bits the format names no entry for.
	named := map[uint64]bool{}
	for _, e := range ft.Entries() {
		named[e.Mask] = true
	}
	bits, _, err := enumBits(enum)
	if err != nil {
		t.Fatal(err)
	}
	var unnamed uint64
	for _, b := range bits {
		if !named[1<<b.bit] {
			unnamed |= 1 << b.bit
			t.Logf("the format's table has no name for ___GFP_%s_BIT (%#x)", b.name, uint64(1)<<b.bit)
		}
	}
	// FromEnum lists the single bits in enum order, as the kernel's table
	// does since 6.14 (TRACE_GFP_FLAGS); 6.10-6.13 print them in the older
	// hand-written order: the same names, in another order.
	inOrder := true
	if rel, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		if v, err := parseRelease(string(rel)); err == nil && v.less(kver{6, 14, 0}) {
			inOrder = false
		}
	}
	rng := rand.New(rand.NewSource(2))
	reordered := 0
	for i := 0; i < 5000; i++ {
		m := uint64(rng.Uint32()) & uint64(rng.Uint32()) & 0x3ffffff &^ unnamed
		b, f := bt.String(m), ft.String(m)
		if b == f {
			continue
		}
		if !inOrder && sameNames(b, f) {
			reordered++
			continue
		}
		t.Errorf("%#x: BTF %q, tracefs %q", m, b, f)
	}
	if reordered > 0 {
		t.Logf("%d of 5000 masks print the same names in another order (a kernel before 6.14)", reordered)
	}
	loaded, err := Load(dir, enum, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bits {
		if m := uint64(1) << b.bit; unnamed&m != 0 {
			if got, want := loaded.String(m), bt.String(m); got != want {
				t.Errorf("Load (%s): String(%#x) = %q, want %q as kernel BTF names it", loaded.Source(), m, got, want)
			}
		}
	}
}

// sameNames reports whether two decodings name the same flags.
func sameNames(a, b string) bool {
	x, y := strings.Split(a, "|"), strings.Split(b, "|")
	sort.Strings(x)
	sort.Strings(y)
	return slices.Equal(x, y)
}

// readTracefsFormat returns the tracefs mount whose format file it read,
// and the file.
func readTracefsFormat() (string, []byte, error) {
	var errs []error
	for _, dir := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		data, err := os.ReadFile(filepath.Join(dir, FormatPath))
		if err == nil {
			return dir, data, nil
		}
		errs = append(errs, err)
	}
	return "", nil, errors.Join(errs...)
}

func TestLoad(t *testing.T) {
	tracefs := func(t *testing.T, file string) string {
		dir := t.TempDir()
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, FormatPath)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	gfpEnum := members(enums612)
	otherEnum := members(map[string]uint64{"MIGRATE_MOVABLE": 1})

	tests := []struct {
		name       string
		dir        string
		enum       []EnumMember
		release    string
		wantSource string
		wantErr    string
	}{
		{"format", tracefs(t, "6.18-mm_page_alloc.format"), nil, "6.18.0", "tracefs format", ""},
		{"format with enums", tracefs(t, "6.12-unresolved-enums-mm_page_alloc.format"), gfpEnum, "6.12.0", "tracefs format with kernel BTF enums (__GFP_NO_OBJ_EXT from kernel BTF)", ""},
		{"format lacking a bit of the enum", tracefs(t, "6.12-mm_page_alloc.format"), gfpEnum, "6.12.118+deb13-amd64", "tracefs format (__GFP_NO_OBJ_EXT from kernel BTF)", ""},
		{"format lacking a bit, no enum", tracefs(t, "6.12-mm_page_alloc.format"), nil, "6.12.118+deb13-amd64", "tracefs format", ""},
		{"unresolved enums fall back to BTF", tracefs(t, "6.12-unresolved-enums-mm_page_alloc.format"), nil, "6.12.0", "built-in table for 6.12", ""},
		{"missing format uses BTF", t.TempDir(), gfpEnum, "6.12.1", "kernel BTF", ""},
		{"old kernel BTF uses built-in", t.TempDir(), otherEnum, "5.10.0-28-amd64", "built-in table for 5.4", ""},
		{"release only", "", nil, "3.10.0-1160.el7.x86_64", "built-in table for 3.10", ""},
		{"nothing", "", nil, "", "", "no tracefs, kernel BTF or release"},
		{"all fail", t.TempDir(), otherEnum, "4.9.0", "", "no built-in GFP table for kernel 4.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tb, err := Load(tc.dir, tc.enum, tc.release)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tb.Source() != tc.wantSource {
				t.Errorf("Source() = %q, want %q", tb.Source(), tc.wantSource)
			}
			if got := tb.String(0x400cc0); got != "GFP_KERNEL_ACCOUNT" && !strings.HasPrefix(tc.release, "3.") {
				t.Errorf("String(0x400cc0) = %q", got)
			}
		})
	}
}

// 6.12's tracefs table has no name for __GFP_NO_OBJ_EXT, which its GFP
// enum has: the kernel prints the bit in hex, Load names it from BTF.
func TestLoadNamesBitsTracefsLacks(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "6.12-mm_page_alloc.format"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FormatPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	plain, err := Load(dir, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	withEnum, err := Load(dir, members(enums612), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mask        uint64
		kernel, bpf string
	}{
		{0x1000000, "0x1000000", "__GFP_NO_OBJ_EXT"},
		{0x1000cc0, "GFP_KERNEL|0x1000000", "GFP_KERNEL|__GFP_NO_OBJ_EXT"},
		{0x1800cc0, "GFP_KERNEL|__GFP_ZEROTAGS|0x1000000", "GFP_KERNEL|__GFP_ZEROTAGS|__GFP_NO_OBJ_EXT"},
		{0x4000000, "0x4000000", "0x4000000"}, // in neither
		{0xcc0, "GFP_KERNEL", "GFP_KERNEL"},
	} {
		if got := plain.String(tc.mask); got != tc.kernel {
			t.Errorf("tracefs alone: String(%#x) = %q, want %q", tc.mask, got, tc.kernel)
		}
		if got := withEnum.String(tc.mask); got != tc.bpf {
			t.Errorf("tracefs and BTF: String(%#x) = %q, want %q", tc.mask, got, tc.bpf)
		}
	}
	if m, ok := withEnum.Bit("__GFP_NO_OBJ_EXT"); !ok || m != 0x1000000 {
		t.Errorf("Bit(__GFP_NO_OBJ_EXT) = %#x, %v", m, ok)
	}
	// Every entry of the format file comes first, in its order.
	if got, want := withEnum.Entries()[:len(plain.Entries())], plain.Entries(); !equalEntries(got, want) {
		t.Errorf("the format's entries changed:\ngot  %v\nwant %v", got, want)
	}
}

func TestForRelease(t *testing.T) {
	tests := []struct {
		release, layout string
		atomic          uint64
	}{
		{"2.6.32-754.el6.x86_64", "2.6.32", 0x20},
		{"3.10.0-1160.el7.x86_64", "3.10", 0x20},
		{"3.2.0-4-amd64", "3.10", 0x20},
		{"4.18.0-513.el8.x86_64", "4.18", 0x480020},
		{"4.19.0-21-amd64", "4.18", 0x480020},
		{"5.4.0-150-generic", "5.4", 0xa20},
		{"5.10.0-28-amd64", "5.4", 0xa20},
		{"5.14.0-362.el9.x86_64", "5.15", 0xa20},
		{"5.15.0-84-generic", "5.15", 0xa20},
		{"6.1.0-18-amd64", "6.1", 0xa20},
		{"6.8.0-45-generic", "6.8", 0x820},
		{"6.12.9", "6.12", 0x820},
		{"6.14.0-rc1", "6.14", 0x820},
		{"6.18.44-fc-v669", "6.18", 0x820},
		{"7.0.0", "6.18", 0x820},
	}
	for _, tc := range tests {
		tb, err := ForRelease(tc.release)
		if err != nil {
			t.Errorf("ForRelease(%q): %v", tc.release, err)
			continue
		}
		if want := "built-in table for " + tc.layout; tb.Source() != want {
			t.Errorf("ForRelease(%q).Source() = %q, want %q", tc.release, tb.Source(), want)
		}
		if got := tb.String(tc.atomic); got != "GFP_ATOMIC" {
			t.Errorf("ForRelease(%q).String(%#x) = %q, want GFP_ATOMIC", tc.release, tc.atomic, got)
		}
	}
	for _, bad := range []string{"", "linux", "6", "2.6.18-419.el5", "4.4.0-210-generic", "4.14.0"} {
		if _, err := ForRelease(bad); err == nil {
			t.Errorf("ForRelease(%q) succeeded", bad)
		}
	}
}
