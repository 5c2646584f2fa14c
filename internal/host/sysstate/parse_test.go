package sysstate

import (
	"strings"
	"testing"
)

func TestParseVmstat(t *testing.T) {
	in := "nr_free_pages 844743\npgfault 1947164\nallocstall_normal\t7\ncompact_stall   3\n"
	m, err := parseVmstat([]byte(in), keepVmstat)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m["nr_free_pages"] != 844743 || m["allocstall_normal"] != 7 || m["compact_stall"] != 3 {
		t.Errorf("got %v", m)
	}
	for in, want := range map[string]string{
		"a 1\nb\n":     `line 2: want "name value", got "b"`,
		"pgfree 1 2\n": `line 1: want "name value"`,
		"pgfree x\n":   `line 1: counter pgfree: "x" is not a number`,
		"pgfree -1\n":  `"-1" is not a number`,
		"\npgfree 1\n": `line 1: want "name value", got ""`,
		"pgfree 1\n\n": `line 2`,
		"pgfree 1":     "",
		"pgfault x\n":  "", // not kept, not parsed
		"":             "",
	} {
		_, err := parseVmstat([]byte(in), keepVmstat)
		if (err == nil) != (want == "") || err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("parseVmstat(%q) error %v, want %q", in, err, want)
		}
	}
}

func FuzzParseVmstat(f *testing.F) {
	for _, s := range []string{"nr_free_pages 1\npgfree 2\n", "allocstall_normal 18446744073709551616\n", "a\n", " \n", "pgfree\t\t3", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseVmstat(data, keepVmstat)
		if err == nil {
			for k := range m {
				if !keepVmstat([]byte(k)) {
					t.Errorf("kept %q", k)
				}
			}
		}
	})
}

func TestParsePagetypeinfoHeader(t *testing.T) {
	for in, want := range map[string]int{
		"Page block order: 9\nPages per block:  512\n\nFree pages...": 9,
		"Page block order: 10\nPages per block:  1024\n":              10,
		"Page block order: 9\n":                                       9,
	} {
		got, err := parsePagetypeinfoHeader([]byte(in))
		if err != nil || got != want {
			t.Errorf("parsePagetypeinfoHeader(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "Pages per block: 512\n", "Page block order: -1\n", "Page block order: 99\n", "Page block order: 9\nPages per block: x\n"} {
		if _, err := parsePagetypeinfoHeader([]byte(in)); err == nil {
			t.Errorf("parsePagetypeinfoHeader(%q): no error", in)
		}
	}
}

func FuzzParsePagetypeinfoHeader(f *testing.F) {
	for _, s := range []string{"Page block order: 9\nPages per block:  512\n", "Page block order: 30\nPages per block: 1073741824\n", ":\n:\n:\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := parsePagetypeinfoHeader(data)
		if err == nil && (o < 0 || o > 30) {
			t.Errorf("order %d accepted", o)
		}
	})
}

func TestOrderOf(t *testing.T) {
	for _, tc := range []struct {
		size, page uint64
		max, want  int
		ok         bool
	}{
		{2048, 4, 10, 9, true},
		{1048576, 4, 10, 10, true}, // 1 GiB default huge pages: capped
		{2048, 64, 13, 5, true},
		{3000, 4, 10, 0, false},
		{2, 4, 10, 0, false},
		{2048, 0, 10, 0, false},
	} {
		got, ok := orderOf(tc.size, tc.page, tc.max)
		if got != tc.want || ok != tc.ok {
			t.Errorf("orderOf(%d, %d, %d) = %d, %v", tc.size, tc.page, tc.max, got, ok)
		}
	}
}
