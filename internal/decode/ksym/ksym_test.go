package ksym

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func load(t testing.TB, path string) *Table {
	t.Helper()
	tab, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestSymbolizeExcerpt(t *testing.T) {
	tab := load(t, "testdata/kallsyms")
	for _, tc := range []struct {
		addr uint64
		want string
	}{
		{0xffffffff81621930, "__alloc_pages_noprof+0x0"},
		{0xffffffff81621942, "__alloc_pages_noprof+0x12"},
		{0xffffffff8162192f, "__pfx___alloc_pages_noprof+0xf"},
		{0xffffffff82035b52, "tcp_v4_rcv+0x12"},
		{0xffffffff81e36b00, "sk_clone_lock+0xb0"},
		{0xffffffff81214250, "warn_alloc.cold+0xc"},
		{0xffffffff81207618, "abort+0x8"}, // listed out of order
		// Four aliases at _stext: the first in the file wins.
		{0xffffffff81000004, "srso_alias_untrain_ret+0x4"},
		{0xffffffff8220bb10, "_etext+0x8"}, // past text: kallsyms has no sizes
		{0xffffffffc0201004, "ftrace_trampoline+0x4 [__builtin__ftrace]"},
		// The global beats the local alias at the same address.
		{0xffffffffc0a4104c, "nf_conntrack_in+0x3c [nf_conntrack]"},
		{0xffffffffc0a40018, "nf_ct_get_tuple+0x8 [nf_conntrack]"},
		{0xffffffffc0a48010, "nf_conntrack_in+0x7000 [nf_conntrack]"}, // b symbol skipped
		{0xffffffffc0900004, "__pfx_xfs_buf_alloc+0x4 [xfs]"},
		{0xffffffffc0900014, "xfs_buf_alloc+0x4 [xfs]"},
		{0xffffffffc0900210, "xfs_weak_hook+0x10 [xfs]"},
		{0xffffffff80000000, "0xffffffff80000000"}, // below the first symbol
	} {
		if got := tab.FormatAddr(tc.addr); got != tc.want {
			t.Errorf("FormatAddr(%#x) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	s, ok := tab.Symbolize(0xffffffffc0a4104c)
	if !ok || s != (Symbol{Name: "nf_conntrack_in", Offset: 0x3c, Module: "nf_conntrack"}) {
		t.Errorf("Symbolize = %+v, %v", s, ok)
	}
	// 57 text lines, 3 aliases at _stext and one in nf_conntrack dropped.
	if tab.Len() != 53 {
		t.Errorf("Len = %d, want 53", tab.Len())
	}
}

func TestPfxNameShared(t *testing.T) {
	tab, err := Parse(strings.NewReader("ffffffff81000000 T __pfx_foo\nffffffff81000010 T foo\nffffffff81000020 T bar\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tab.names != "__pfx_foobar" {
		t.Errorf("names = %q: foo should reuse the tail of __pfx_foo", tab.names)
	}
	if got := tab.FormatAddr(0xffffffff81000011); got != "foo+0x1" {
		t.Errorf("got %q", got)
	}
}

func TestHidden(t *testing.T) {
	_, err := Load("testdata/kallsyms.hidden")
	if !errors.Is(err, ErrHidden) {
		t.Fatalf("err = %v, want ErrHidden", err)
	}
	if want := "reading testdata/kallsyms.hidden: kallsyms addresses are hidden (kptr_restrict); run as root"; err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                                    "no text symbols",
		"ffffffff82400000 D __start_rodata\n": "no text symbols",
		"ffffffff81000000 T a\nxyz\n":         `line 2: want "address type name", got "xyz"`,
		"ffffffff8100000g T a\n":              `line 1: address "ffffffff8100000g" is not hexadecimal`,
		"1ffffffff81000000 T a\n":             "is not hexadecimal",
		"ffffffff81000000 T a\t[mod\n":        `line 1: module "[mod" is not "[name]"`,
		"ffffffff81000000 T a b\n":            `line 1: symbol name "a b" is not a name`,
		"ffffffff81000000 T \n":               "want \"address type name\"",
	} {
		_, err := Parse(strings.NewReader(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) error %v, want %q", in, err, want)
		}
	}
	// No trailing newline is fine.
	if _, err := Parse(strings.NewReader("ffffffff81000000 T a")); err != nil {
		t.Error(err)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		s    Symbol
		want string
	}{
		{Symbol{Name: "tcp_v4_rcv", Offset: 0x12}, "tcp_v4_rcv+0x12"},
		{Symbol{Name: "nf_conntrack_in", Offset: 0, Module: "nf_conntrack"}, "nf_conntrack_in+0x0 [nf_conntrack]"},
		{Symbol{}, "?"},
	} {
		if got := Format(tc.s); got != tc.want {
			t.Errorf("Format(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestRealKallsyms symbolizes the page allocator's entry point, with its
// address read from the file itself. As non-root the addresses are hidden
// and Load must say so.
func TestRealKallsyms(t *testing.T) {
	const path = "/proc/kallsyms"
	if _, err := os.Stat(path); err != nil {
		t.Skip("no /proc/kallsyms")
	}
	tab, err := Load(path)
	if os.Geteuid() != 0 {
		if errors.Is(err, ErrHidden) {
			t.Skip("not root: addresses hidden, as expected; Load said: " + err.Error())
		}
		if err != nil {
			t.Fatal(err)
		}
		// kptr_restrict=0 shows addresses to everyone: test on.
	} else if err != nil {
		t.Fatal(err)
	}
	name, addr := findSymbol(t, path, "__alloc_pages_noprof", "__alloc_pages")
	s, ok := tab.Symbolize(addr + 0x10)
	if !ok || s.Name != name || s.Offset != 0x10 || s.Module != "" {
		t.Errorf("Symbolize(%s+0x10 = %#x) = %+v, %v", name, addr+0x10, s, ok)
	}
	if tab.Len() < 1000 {
		t.Errorf("only %d symbols", tab.Len())
	}
	t.Logf("%d symbols, %d bytes kept", tab.Len(), tab.footprint())
}

func findSymbol(t *testing.T, path string, names ...string) (string, uint64) {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || fields[1] != "T" {
			continue
		}
		for _, n := range names {
			if fields[2] == n {
				addr, err := strconv.ParseUint(fields[0], 16, 64)
				if err != nil {
					t.Fatal(err)
				}
				return n, addr
			}
		}
	}
	t.Skipf("none of %v in %s", names, path)
	return "", 0
}

func FuzzParse(f *testing.F) {
	data, err := os.ReadFile("testdata/kallsyms")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("ffffffff81000000 T __pfx_a\nffffffff81000010 T a\n"))
	f.Add([]byte("0000000000000000 T a\n"))
	f.Add([]byte("ffffffffffffffff t z\t[m]\n0000000000000001 W a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := Parse(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for i := 1; i < len(tab.addrs); i++ {
			if tab.addrs[i-1] >= tab.addrs[i] {
				t.Fatalf("addresses not sorted and unique at %d", i)
			}
		}
		for _, a := range tab.addrs {
			if s, ok := tab.Symbolize(a); !ok || s.Offset != 0 || s.Name == "" {
				t.Fatalf("Symbolize(%#x) = %+v, %v", a, s, ok)
			}
		}
	})
}

func BenchmarkLoad(b *testing.B) {
	const path = "/proc/kallsyms"
	if _, err := Load(path); err != nil {
		b.Skip(err)
	}
	b.ReportAllocs()
	var tab *Table
	for b.Loop() {
		tab, _ = Load(path)
	}
	b.ReportMetric(float64(tab.footprint()), "kept-B")
	b.ReportMetric(float64(tab.Len()), "symbols")
}

func BenchmarkParseExcerpt(b *testing.B) {
	data, err := os.ReadFile("testdata/kallsyms")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Parse(strings.NewReader(string(data)))
	}
}

func BenchmarkSymbolize(b *testing.B) {
	tab, err := Load("/proc/kallsyms")
	if err != nil {
		b.Skip(err)
	}
	addrs := tab.addrs
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tab.Symbolize(addrs[i%len(addrs)] + 3)
		i += 7919
	}
}
