package loader

import (
	"slices"
	"strings"
	"testing"
)

func TestSignalHookTypes(t *testing.T) {
	for _, c := range []struct {
		sig       Signal
		allocHook string
		want      []string
	}{
		{SignalAlloc, "auto", []string{"fexit", "tp_btf", "tracepoint"}},
		{SignalAlloc, "fexit", []string{"fexit"}},
		{SignalAlloc, "tp_btf", []string{"tp_btf"}},
		{SignalAlloc, "tracepoint", []string{"tracepoint"}},
		{SignalExtfrag, "fexit", []string{"tracepoint", "tp_btf"}},
		{SignalHugetlb, "auto", []string{"tracepoint", "tp_btf"}},
	} {
		got, err := SignalHookTypes(c.sig, c.allocHook)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("SignalHookTypes(%s, %s) = %v, %v; want %v", c.sig, c.allocHook, got, err, c.want)
		}
		for _, h := range got {
			if !slices.Contains(HookTypes, h) {
				t.Errorf("%s: hook type %q is not in HookTypes %v", c.sig, h, HookTypes)
			}
		}
	}
	if _, err := SignalHookTypes(SignalAlloc, "kprobe"); err == nil {
		t.Error("unknown alloc hook accepted")
	}
	if _, err := SignalHookTypes("bogus", "auto"); err == nil {
		t.Error("unknown signal accepted")
	}
}

func TestCheckComm(t *testing.T) {
	for comm, want := range map[string]string{
		"postgres":         "",
		"exactly15chars!":  "",
		"\xff\xfe":         "", // a kernel name is bytes, not UTF-8
		"":                 "empty",
		"sixteen-chars-16": "longer than the kernel's 15-character",
		"nul\x00":          "NUL",
	} {
		err := CheckComm(comm)
		if (want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), want)) {
			t.Errorf("CheckComm(%q) = %v, want %q", comm, err, want)
		}
	}
}
