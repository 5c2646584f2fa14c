package sysstate

import (
	"os"
	"strings"
	"testing"
)

// TestPageblockOrderFromFormat evaluates the pageblock_order argument of
// mm_page_alloc_extfrag's print format: the real file of this 6.18 host
// (min(HUGETLB_PAGE_ORDER, MAX_PAGE_ORDER) expanded), then the forms the
// macro takes elsewhere, and refuses what is not a constant, so that the
// caller reads /proc/pagetypeinfo instead of trusting a guess.
func TestPageblockOrderFromFormat(t *testing.T) {
	host, err := os.ReadFile("testdata/formats/mm_page_alloc_extfrag-6.18-amd64.format")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := PageblockOrderFromFormat(host); err != nil || got != 9 {
		t.Errorf("6.18 host: %d, %v; want 9", got, err)
	}
	withArg := func(arg string) []byte {
		return []byte("name: mm_page_alloc_extfrag\nformat:\n\n" +
			`print fmt: "page=%p pfn=0x%lx alloc_order=%d fallback_order=%d pageblock_order=%d alloc_migratetype=%d", ` +
			`(((struct page *)vmemmap_base) + (REC->pfn)), REC->pfn, REC->alloc_order, REC->fallback_order, ` + arg + ", REC->alloc_migratetype\n")
	}
	for _, c := range []struct {
		arg  string
		want int
	}{
		{"((21 - 12))", 9}, // HUGETLB_PAGE_ORDER alone (before min_t)
		{"(10 - 1)", 9},    // MAX_ORDER - 1, without huge pages
		{"(((unsigned int)((29 - 16))) < ((unsigned int)(13)) ? ((unsigned int)((29 - 16))) : ((unsigned int)(13)))", 13}, // arm64, 64 KiB pages
		{"(((unsigned int)((21 - 12))) < ((unsigned int)(5)) ? ((unsigned int)((21 - 12))) : ((unsigned int)(5)))", 5},    // CONFIG_PAGE_BLOCK_ORDER=5
		{"(1 << 3) + 1", 9},
	} {
		if got, err := PageblockOrderFromFormat(withArg(c.arg)); err != nil || got != c.want {
			t.Errorf("%s: %d, %v; want %d", c.arg, got, err, c.want)
		}
	}
	for _, arg := range []string{
		"pageblock_order", // a variable (powerpc): not a constant
		"__builtin_choose_expr(((!!(sizeof((typeof((unsigned int)(9)) *)1 == (typeof((unsigned int)(10)) *)1)))), 9, 10)",
		"(9", "9 ?", "(int)", "1 << 99", "40", "-1", "",
	} {
		if got, err := PageblockOrderFromFormat(withArg(arg)); err == nil {
			t.Errorf("%q: %d, want an error", arg, got)
		}
	}
	noOrder := strings.Replace(string(host), "pageblock_order=%d", "order=%d", 1)
	if _, err := PageblockOrderFromFormat([]byte(noOrder)); err == nil {
		t.Error("a format without pageblock_order gave an order")
	}
	if _, err := PageblockOrderFromFormat([]byte("name: x\n")); err == nil {
		t.Error("a format without print fmt gave an order")
	}
	// "%%" is a literal percent, not an argument.
	pct := strings.Replace(string(withArg("(7)")), "page=%p", "100%% page=%p", 1)
	if got, err := PageblockOrderFromFormat([]byte(pct)); err != nil || got != 7 {
		t.Errorf("with %%%%: %d, %v; want 7", got, err)
	}
}
