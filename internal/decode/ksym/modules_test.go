package ksym

import (
	"strings"
	"testing"
)

// TestModuleExtents: an address past the end of a module (a trampoline
// the module area holds after it) is no symbol of that module once
// /proc/modules gave its extent; inside it, symbols are as before. The
// lines are from Debian 12's 6.1 guest with virtio_pci loaded.
func TestModuleExtents(t *testing.T) {
	tab, err := Parse(strings.NewReader("ffffffff81000000 T _stext\n" +
		"ffffffffc0120000 t virtio_pci_probe\t[virtio_pci]\n" +
		"ffffffffc0123a00 t virtio_pci_driver_exit\t[virtio_pci]\n" +
		"ffffffffc0200000 t virtnet_poll\t[virtio_net]\n"))
	if err != nil {
		t.Fatal(err)
	}
	past := uint64(0xffffffffc0123a00 + 0x51ba)
	if s, ok := tab.Symbolize(past); !ok || s.Name != "virtio_pci_driver_exit" {
		t.Fatalf("without extents: %+v %v", s, ok)
	}
	mods := "virtio_pci 16384 0 - Live 0xffffffffc0120000\n" +
		"virtio_net 73728 0 - Live 0xffffffffc0200000 (E)\n" +
		"hidden 4096 0 - Live 0x0000000000000000\n"
	if err := tab.parseModules(strings.NewReader(mods)); err != nil {
		t.Fatal(err)
	}
	if s, ok := tab.Symbolize(past); ok {
		t.Errorf("past virtio_pci's end (%#x): %+v", past, s)
	}
	if got := tab.FormatAddr(past); got != "0xffffffffc0128bba" {
		t.Errorf("FormatAddr = %q", got)
	}
	if s, ok := tab.Symbolize(0xffffffffc0123a10); !ok || s.Name != "virtio_pci_driver_exit" || s.Offset != 0x10 || s.Module != "virtio_pci" {
		t.Errorf("inside: %+v %v", s, ok)
	}
	if s, ok := tab.Symbolize(0xffffffffc0200040); !ok || s.Name != "virtnet_poll" {
		t.Errorf("virtio_net: %+v %v", s, ok)
	}
	if s, ok := tab.Symbolize(0xffffffff81001000); !ok || s.Name != "_stext" {
		t.Errorf("kernel image: %+v %v", s, ok)
	}
	for _, bad := range []string{"virtio_pci 61440 0 -\n", "virtio_pci x 0 - Live 0xffffffffc0120000\n", "virtio_pci 1 0 - Live 0xzz\n"} {
		if err := tab.parseModules(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzParseModules: any modules file ends in an error or a table whose
// lookups stay in bounds.
func FuzzParseModules(f *testing.F) {
	f.Add("virtio_pci 61440 0 - Live 0xffffffffc0120000\n")
	f.Add("a 18446744073709551615 0 - Live 0xffffffffffffffff\n")
	f.Fuzz(func(t *testing.T, mods string) {
		tab, err := Parse(strings.NewReader("ffffffffc0120000 t f\t[virtio_pci]\nffffffff81000000 T _stext\n"))
		if err != nil {
			t.Fatal(err)
		}
		if tab.parseModules(strings.NewReader(mods)) == nil {
			tab.Symbolize(0xffffffffc0130000)
			tab.Symbolize(0xffffffffffffffff)
		}
	})
}
