package loader

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/host/rawbtf"
)

// The raw reader must find what cilium/ebpf's parsed BTF finds.
func TestPreemptRawMatchesParsed(t *testing.T) {
	if preemptArchUsesThreadInfo() {
		t.Skip("preempt_count is in thread_info on this architecture")
	}
	u32 := &btf.Int{Name: "unsigned int", Size: 4}
	i32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	task := &btf.Struct{Name: "task_struct", Size: 8, Members: []btf.Member{{Name: "pid", Type: i32}}}
	rq := &btf.Struct{Name: "rq", Size: 64, Members: []btf.Member{{Name: "nr_running", Type: u32}}}
	// pcpu_hot as 6.2 to 6.14 declare it: its members in an anonymous
	// struct inside an anonymous union with a cache line of padding.
	hot := func(bitfields bool) btf.Type {
		ms := []btf.Member{
			{Name: "current_task", Type: &btf.Pointer{Target: task}},
			{Name: "preempt_count", Type: i32, Offset: 64},
			{Name: "cpu_number", Type: i32, Offset: 96},
		}
		if bitfields {
			ms = append(ms, btf.Member{Name: "flag", Type: u32, Offset: 128, BitfieldSize: 1})
		}
		pad := &btf.Array{Index: u32, Type: &btf.Int{Name: "u8", Size: 1}, Nelems: 64}
		union := &btf.Union{Size: 64, Members: []btf.Member{
			{Name: "", Type: &btf.Struct{Size: 24, Members: ms}},
			{Name: "pad", Type: pad},
		}}
		return &btf.Typedef{Name: "pcpu_hot_t", Type: &btf.Volatile{Type: &btf.Struct{Name: "pcpu_hot", Size: 64, Members: []btf.Member{{Name: "", Type: union}}}}}
	}
	// The anonymous struct need not be at offset 0 of its parent.
	hotShifted := &btf.Struct{Name: "pcpu_hot", Size: 40, Members: []btf.Member{
		{Name: "early", Type: i32},
		{Name: "", Type: &btf.Struct{Size: 8, Members: []btf.Member{{Name: "cpu_number", Type: i32}, {Name: "preempt_count", Type: i32, Offset: 32}}}, Offset: 64},
	}}
	// An anonymous member without preempt_count is passed over.
	hotElsewhere := &btf.Struct{Name: "pcpu_hot", Size: 16, Members: []btf.Member{
		{Name: "", Type: &btf.Union{Size: 4, Members: []btf.Member{{Name: "cpu_number", Type: i32}}}},
		{Name: "preempt_count", Type: i32, Offset: 96},
	}}
	section := func(vars map[string]struct {
		off uint32
		typ btf.Type
	}) *btf.Datasec {
		ds := &btf.Datasec{Name: ".data..percpu", Size: 1 << 16}
		for name, v := range vars {
			ds.Vars = append(ds.Vars, btf.VarSecinfo{Type: &btf.Var{Name: name, Type: v.typ}, Offset: v.off, Size: 8})
		}
		return ds
	}
	type vars = map[string]struct {
		off uint32
		typ btf.Type
	}
	for _, tc := range []struct {
		name  string
		types []btf.Type
		want  preemptLocation
	}{
		{"6.15+", []btf.Type{section(vars{"runqueues": {0x3000, rq}, "__preempt_count": {0x28, i32}})},
			preemptLocation{src: allocPreemptSourcePREEMPT_PERCPU, rqOff: 0x3000, pcOff: 0x28, desc: "per-CPU __preempt_count"}},
		{"6.2-6.14", []btf.Type{section(vars{"runqueues": {0x3000, rq}, "pcpu_hot": {0x100, hot(false)}})},
			preemptLocation{src: allocPreemptSourcePREEMPT_PERCPU, rqOff: 0x3000, pcOff: 0x108, desc: "per-CPU pcpu_hot.preempt_count"}},
		{"bitfields", []btf.Type{section(vars{"runqueues": {0x3000, rq}, "pcpu_hot": {0x100, hot(true)}})},
			preemptLocation{src: allocPreemptSourcePREEMPT_PERCPU, rqOff: 0x3000, pcOff: 0x108, desc: "per-CPU pcpu_hot.preempt_count"}},
		{"nested at an offset", []btf.Type{section(vars{"runqueues": {0x3000, rq}, "pcpu_hot": {0x100, hotShifted}})},
			preemptLocation{src: allocPreemptSourcePREEMPT_PERCPU, rqOff: 0x3000, pcOff: 0x10c, desc: "per-CPU pcpu_hot.preempt_count"}},
		{"after an anonymous member", []btf.Type{section(vars{"runqueues": {0x3000, rq}, "pcpu_hot": {0x100, hotElsewhere}})},
			preemptLocation{src: allocPreemptSourcePREEMPT_PERCPU, rqOff: 0x3000, pcOff: 0x10c, desc: "per-CPU pcpu_hot.preempt_count"}},
		{"pcpu_hot without preempt_count", []btf.Type{section(vars{"runqueues": {0x3000, rq}, "pcpu_hot": {0x100, &btf.Struct{Name: "pcpu_hot", Size: 4, Members: []btf.Member{{Name: "", Type: &btf.Union{Size: 4, Members: []btf.Member{{Name: "cpu_number", Type: i32}}}}}}}})},
			preemptLocation{desc: "preempt_count not found in kernel BTF"}},
		{"no runqueues", []btf.Type{section(vars{"__preempt_count": {0x28, i32}})},
			preemptLocation{desc: "runqueues not in kernel BTF"}},
		{"no preempt_count", []btf.Type{section(vars{"runqueues": {0x3000, rq}})},
			preemptLocation{desc: "preempt_count not found in kernel BTF"}},
		{"no section", []btf.Type{rq},
			preemptLocation{desc: "no per-CPU section in kernel BTF"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := btf.NewBuilder(tc.types, nil)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := b.Marshal(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			path := t.TempDir() + "/vmlinux"
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := findPreemptCountRaw(path)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if parsed := findPreemptCount(spec); got != tc.want || parsed != tc.want {
				t.Errorf("raw %+v, parsed %+v, want %+v", got, parsed, tc.want)
			}
		})
	}
}

func TestPreemptRawOnRunningKernel(t *testing.T) {
	const path = rawbtf.KernelPath
	got, err := findPreemptCountRaw(path)
	if err != nil {
		t.Skipf("raw kernel BTF not readable here: %v", err)
	}
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		t.Fatal(err)
	}
	if want := findPreemptCount(kernel); got != want {
		t.Errorf("raw %+v, parsed %+v", got, want)
	}
	t.Logf("%+v", got)
}

// Without preempt_count every event's context is "unknown": on an x86
// kernel it must be found, from BTF or (a kernel whose BTF has no per-CPU
// section, 5.10) kallsyms, whose addresses only root sees.
func TestPreemptFoundOnRunningKernel(t *testing.T) {
	if preemptArchUsesThreadInfo() {
		t.Skip("preempt_count is in thread_info on this architecture")
	}
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	loc := findPreemptCount(kernel)
	if loc.src == allocPreemptSourcePREEMPT_NONE {
		if os.Geteuid() != 0 {
			t.Skipf("kernel BTF says %q and kallsyms addresses need root", loc.desc)
		}
		loc = resolvePreempt(loc, nil, kernel, kallsymsPath)
	}
	if loc.src == allocPreemptSourcePREEMPT_NONE {
		t.Fatalf("preempt_count not found: %s", loc.desc)
	}
	t.Logf("%+v", loc)
}

func TestPreemptFromKallsyms(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// As Debian 11's 5.10 lists them (its BTF has no per-CPU section).
	loc := preemptFromKallsyms(write("5.10", "0000000000000000 A __per_cpu_start\n000000000001fb80 A __preempt_count\n0000000000033c40 A runqueues\n"))
	if loc.src != allocPreemptSourcePREEMPT_PERCPU || loc.rqOff != 0x33c40 || loc.pcOff != 0x1fb80 {
		t.Errorf("5.10: %+v", loc)
	}
	for name, text := range map[string]string{
		"hidden":  "0000000000000000 A __preempt_count\n0000000000000000 A runqueues\n", // kptr_restrict
		"absent":  "ffffffff81000000 T _stext\n",                                        // this 6.18 host
		"notpcpu": "ffffffff82000000 D __preempt_count\n0000000000033c40 A runqueues\n",
	} {
		if loc := preemptFromKallsyms(write(name, text)); loc.src != allocPreemptSourcePREEMPT_NONE || loc.desc == "" {
			t.Errorf("%s: %+v, want none with a reason", name, loc)
		}
	}
	if loc := preemptFromKallsyms(filepath.Join(dir, "missing")); loc.src != allocPreemptSourcePREEMPT_NONE || loc.desc == "" {
		t.Errorf("missing file: %+v", loc)
	}
}

// resolvePreempt falls back to kallsyms only when BTF says nothing, and
// keeps both reasons when neither works.
func TestResolvePreempt(t *testing.T) {
	if preemptArchUsesThreadInfo() {
		t.Skip("preempt_count is in thread_info on this architecture")
	}
	dir := t.TempDir()
	ks := filepath.Join(dir, "kallsyms")
	if err := os.WriteFile(ks, []byte("000000000001fb80 A __preempt_count\n0000000000033c40 A runqueues\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fromBTF := preemptLocation{src: allocPreemptSourcePREEMPT_PERCPU, rqOff: 1, pcOff: 2, desc: "per-CPU __preempt_count"}
	if got := resolvePreempt(fromBTF, nil, nil, ks); got != fromBTF {
		t.Errorf("BTF found it: got %+v", got)
	}
	none := preemptLocation{desc: "no per-CPU section in kernel BTF"}
	if got := resolvePreempt(none, nil, nil, ks); got.src != allocPreemptSourcePREEMPT_PERCPU || got.rqOff != 0x33c40 || got.pcOff != 0x1fb80 {
		t.Errorf("kallsyms fallback: got %+v", got)
	}
	got := resolvePreempt(none, nil, nil, filepath.Join(dir, "missing"))
	if got.src != allocPreemptSourcePREEMPT_NONE || !strings.HasPrefix(got.desc, none.desc+"; ") {
		t.Errorf("neither: got %+v", got)
	}
}
