package ksym

import (
	"maps"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	// Lines as Debian 11's 5.10 prints them: per-CPU variables are
	// absolute offsets in the per-CPU section.
	const kallsyms = `0000000000000000 A __per_cpu_start
000000000001fb80 A __preempt_count
0000000000033c40 A runqueues
ffffffff81000000 T _stext
ffffffffc0a01000 t runqueues	[fake_module]
0000000000000000 A hidden_sym
`
	got, err := lookup(strings.NewReader(kallsyms), []string{"runqueues", "__preempt_count", "hidden_sym", "absent"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"runqueues": 0x33c40, "__preempt_count": 0x1fb80}
	if !maps.Equal(got, want) {
		t.Errorf("got %x, want %x", got, want)
	}
}

func TestLookupMalformed(t *testing.T) {
	if _, err := lookup(strings.NewReader("zzzz A runqueues\n"), []string{"runqueues"}); err == nil {
		t.Error("no error for a bad address")
	}
	got, err := lookup(strings.NewReader("garbage\n\n1 runqueues\n"), []string{"runqueues"})
	if err != nil || len(got) != 0 {
		t.Errorf("got %v, %v; want nothing, no error", got, err)
	}
}

func TestLookupFile(t *testing.T) {
	if _, err := Lookup("testdata/does-not-exist", "x"); err == nil {
		t.Error("no error for a missing file")
	}
	m, err := Lookup("testdata/kallsyms", "no_such_symbol_here")
	if err != nil || len(m) != 0 {
		t.Errorf("got %v, %v", m, err)
	}
}
