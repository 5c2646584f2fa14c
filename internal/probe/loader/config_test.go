package loader

import (
	"slices"
	"testing"

	"github.com/memtrace/memtrace/internal/event"
)

func TestSignalHookTypes(t *testing.T) {
	for _, c := range []struct {
		sig       event.Signal
		allocHook string
		want      []string
	}{
		{event.SignalAlloc, "auto", []string{"fexit", "tp_btf", "tracepoint"}},
		{event.SignalAlloc, "fexit", []string{"fexit"}},
		{event.SignalAlloc, "tp_btf", []string{"tp_btf"}},
		{event.SignalAlloc, "tracepoint", []string{"tracepoint"}},
		{event.SignalExtfrag, "fexit", []string{"tracepoint", "tp_btf"}},
		{event.SignalHugetlb, "auto", []string{"tracepoint", "tp_btf"}},
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
	if _, err := SignalHookTypes(event.SignalAlloc, "kprobe"); err == nil {
		t.Error("unknown alloc hook accepted")
	}
	if _, err := SignalHookTypes("bogus", "auto"); err == nil {
		t.Error("unknown signal accepted")
	}
}

// TestConfigValidateChecksComm: loading refuses every comm CheckComm
// refuses, the one --comm rule, a NUL byte included (a length check of its
// own let it through).
func TestConfigValidateChecksComm(t *testing.T) {
	for comm, ok := range map[string]bool{"": true, "postgres": true, "sixteen-chars-16": false, "nul\x00": false} {
		c := DefaultConfig()
		c.Comm = comm
		if err := c.validate(); (err == nil) != ok {
			t.Errorf("Config{Comm: %q}.validate() = %v, want ok %v", comm, err, ok)
		}
	}
}
