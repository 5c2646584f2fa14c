package sysstate

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestHugePoolArithmetic is the worked example from the Oracle huge page
// article: Total 13007, Free 11813, Rsvd 3372 at 2048 kB gives 1194 pages
// in use and 4566 in use or promised. The article (and our seed digest)
// says 8841 pages, about 17 GiB, are never used; the formula it gives,
// Free - Rsvd, is 11813 - 3372 = 8441 pages = 16.5 GiB. 8841 is a slip in
// the article, so the test pins 8441.
func TestHugePoolArithmetic(t *testing.T) {
	p := HugePool{PageSizeKB: 2048, Total: 13007, Free: 11813, Reserved: 3372}
	if got := p.InUse(); got != 1194 {
		t.Errorf("InUse = %d, want 1194", got)
	}
	if got := p.InUseOrPromised(); got != 4566 {
		t.Errorf("InUseOrPromised = %d, want 4566", got)
	}
	if got := p.NeverUsed(); got != 8441 {
		t.Errorf("NeverUsed = %d, want 8441", got)
	}
	if got, want := p.NeverUsedBytes(), uint64(8441*2048*1024); got != want {
		t.Errorf("NeverUsedBytes = %d, want %d", got, want)
	}
	if gib := float64(p.NeverUsedBytes()) / (1 << 30); gib < 16.4 || gib > 16.6 {
		t.Errorf("NeverUsedBytes = %.2f GiB, want about 16.5", gib)
	}
	m := Memory{HugePagesTotal: 13007, HugePagesFree: 11813, HugePagesRsvd: 3372, HugepageSizeKB: 2048}
	if m.DefaultPool() != p {
		t.Errorf("DefaultPool = %+v, want %+v", m.DefaultPool(), p)
	}
}

// TestHugePoolSaturates: counters read one file at a time can disagree for
// a moment; the arithmetic must not wrap to 2^64.
func TestHugePoolSaturates(t *testing.T) {
	p := HugePool{PageSizeKB: 2048, Total: 10, Free: 12, Reserved: 20}
	if p.InUse() != 0 || p.NeverUsed() != 0 || p.InUseOrPromised() != 20 {
		t.Errorf("got %d %d %d", p.InUse(), p.NeverUsed(), p.InUseOrPromised())
	}
}

func TestHugePoolJSON(t *testing.T) {
	b, err := json.Marshal(HugePool{PageSizeKB: 2048, Total: 13007, Free: 11813, Reserved: 3372})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"page_size_kb":2048,"total":13007,"free":11813,"reserved":3372,"surplus":0,"overcommit":0,` +
		`"in_use":1194,"in_use_or_promised":4566,"never_used":8441,"never_used_bytes":17702060032}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func TestPoolSizeKB(t *testing.T) {
	for name, want := range map[string]uint64{"hugepages-2048kB": 2048, "hugepages-1048576kB": 1048576, "hugepages-0kB": 0, "hugepages-2MB": 0, "demote": 0} {
		got, ok := poolSizeKB(name)
		if got != want || ok != (want > 0) {
			t.Errorf("poolSizeKB(%q) = %d, %v", name, got, ok)
		}
	}
}

func TestParseSingleUint(t *testing.T) {
	for in, want := range map[string]string{"7\n": "", "": "empty file", "x\n": "want one number", "1 2\n": "want one number", "-1\n": "want one number"} {
		_, err := parseSingleUint([]byte(in))
		if (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("parseSingleUint(%q) error %v, want %q", in, err, want)
		}
	}
}

func FuzzParseSingleUint(f *testing.F) {
	for _, s := range []string{"0\n", "13007\n", "18446744073709551615\n", "18446744073709551616", " 12 ", "-1", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parseSingleUint(data) // must not panic
	})
}
