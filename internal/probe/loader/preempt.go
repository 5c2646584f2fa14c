package loader

import (
	"errors"
	"runtime"

	"github.com/cilium/ebpf/btf"

	"github.com/memtrace/memtrace/internal/decode/ksym"
	"github.com/memtrace/memtrace/internal/host/rawbtf"
)

// preemptLocation says where the programs find preempt_count, which tells
// softirq from hardirq from process context.
type preemptLocation struct {
	src   allocPreemptSource // enum preempt_source of bpf/common.h
	rqOff uint64             // section offset of the per-CPU run queue
	pcOff uint64             // section offset of preempt_count
	desc  string
}

// percpuSection is the per-CPU data section as preemptFrom needs it:
// variables' offsets, and the offset of a member in a variable's type.
type percpuSection struct {
	offsets     map[string]uint64
	fieldOffset func(variable, member string) (uint64, bool)
}

// preemptFrom locates preempt_count. x86 keeps it in a static per-CPU
// variable (__preempt_count, or inside pcpu_hot from 6.2 to 6.14); other
// architectures in thread_info.
func preemptFrom(sec percpuSection) preemptLocation {
	rq, ok := sec.offsets["runqueues"]
	if !ok {
		return preemptLocation{desc: "runqueues not in kernel BTF"}
	}
	if pc, ok := sec.offsets["__preempt_count"]; ok {
		return preemptLocation{src: allocPreemptSourcePREEMPT_PERCPU, rqOff: rq, pcOff: pc, desc: "per-CPU __preempt_count"}
	}
	if hot, ok := sec.offsets["pcpu_hot"]; ok {
		if off, ok := sec.fieldOffset("pcpu_hot", "preempt_count"); ok {
			return preemptLocation{src: allocPreemptSourcePREEMPT_PERCPU, rqOff: rq, pcOff: hot + off, desc: "per-CPU pcpu_hot.preempt_count"}
		}
	}
	return preemptLocation{desc: "preempt_count not found in kernel BTF"}
}

func preemptArchUsesThreadInfo() bool { return runtime.GOARCH != "amd64" && runtime.GOARCH != "386" }

var preemptThreadInfoLocation = preemptLocation{src: allocPreemptSourcePREEMPT_THREAD_INFO, desc: "thread_info.preempt.count"}

// findPreemptCountRaw locates preempt_count from the raw kernel BTF
// (rawbtf), which can run while cilium/ebpf parses the same file. It
// fails where the file cannot be mapped (kernels before 6.16) or read;
// the caller then uses findPreemptCount.
func findPreemptCountRaw(path string) (preemptLocation, error) {
	if preemptArchUsesThreadInfo() {
		return preemptThreadInfoLocation, nil
	}
	raw, err := rawbtf.Map(path)
	if err != nil {
		return preemptLocation{}, err
	}
	defer raw.Close()
	return preemptFromRaw(raw)
}

// preemptFromRaw is findPreemptCountRaw on BTF already mapped.
func preemptFromRaw(raw *rawbtf.File) (preemptLocation, error) {
	if preemptArchUsesThreadInfo() {
		return preemptThreadInfoLocation, nil
	}
	vars, err := raw.SectionVars(".data..percpu")
	if err != nil {
		return preemptLocation{}, err
	}
	if vars == nil {
		return preemptLocation{desc: "no per-CPU section in kernel BTF"}, nil
	}
	sec := percpuSection{offsets: make(map[string]uint64, len(vars))}
	for name, v := range vars {
		sec.offsets[name] = v.Offset
	}
	var fieldErr error
	sec.fieldOffset = func(variable, member string) (uint64, bool) {
		off, ok, err := raw.MemberOffset(vars[variable].TypeID, member)
		fieldErr = err
		return off, ok
	}
	loc := preemptFrom(sec)
	if fieldErr != nil {
		return preemptLocation{}, fieldErr
	}
	return loc, nil
}

// findPreemptCount locates preempt_count through cilium/ebpf's parsed
// kernel BTF: the reference for findPreemptCountRaw, and its fallback.
func findPreemptCount(kernel *btf.Spec) preemptLocation {
	if preemptArchUsesThreadInfo() {
		return preemptThreadInfoLocation
	}
	var ds *btf.Datasec
	if err := kernel.TypeByName(".data..percpu", &ds); err != nil {
		return preemptLocation{desc: "no per-CPU section in kernel BTF"}
	}
	sec := percpuSection{offsets: map[string]uint64{}}
	types := map[string]btf.Type{}
	for _, v := range ds.Vars {
		if vv, ok := v.Type.(*btf.Var); ok {
			sec.offsets[vv.Name] = uint64(v.Offset)
			types[vv.Name] = vv.Type
		}
	}
	sec.fieldOffset = func(variable, member string) (uint64, bool) {
		return memberOffset(types[variable], member)
	}
	return preemptFrom(sec)
}

// memberOffset is the byte offset of member in the struct or union typ,
// looking into anonymous members as C does (pcpu_hot's preempt_count is in
// an anonymous struct in an anonymous union).
func memberOffset(typ btf.Type, member string) (uint64, bool) {
	var members []btf.Member
	switch t := btf.UnderlyingType(typ).(type) {
	case *btf.Struct:
		members = t.Members
	case *btf.Union:
		members = t.Members
	}
	for _, m := range members {
		if m.Name == member && member != "" {
			return uint64(m.Offset.Bytes()), true
		}
		if m.Name == "" {
			if off, ok := memberOffset(m.Type, member); ok {
				return uint64(m.Offset.Bytes()) + off, true
			}
		}
	}
	return 0, false
}

// kallsymsPath is where the running kernel lists its symbols.
const kallsymsPath = "/proc/kallsyms"

// modulesPath lists the loaded modules with their base and size, which
// bound their symbols (ksym.Table.LoadModules).
const modulesPath = "/proc/modules"

// resolvePreempt settles where preempt_count is, in order: the raw kernel
// BTF (raw, found while cilium/ebpf parsed the same file; rawErr if it
// could not be read), the parsed kernel BTF, then kallsyms.
func resolvePreempt(raw preemptLocation, rawErr error, kernel *btf.Spec, kallsyms string) preemptLocation {
	loc := raw
	if rawErr != nil {
		loc = findPreemptCount(kernel)
	}
	if loc.src != allocPreemptSourcePREEMPT_NONE || preemptArchUsesThreadInfo() {
		return loc
	}
	ks := preemptFromKallsyms(kallsyms)
	if ks.src == allocPreemptSourcePREEMPT_NONE {
		ks.desc = loc.desc + "; " + ks.desc
	}
	return ks
}

// preemptFromKallsyms is the fallback where kernel BTF has no per-CPU
// section (Debian 11's 5.10 was built without one): x86 still lists
// per-CPU variables in kallsyms, as absolute symbols at their offsets in
// the section ("000000000001fb80 A __preempt_count"). Only the difference
// of the two offsets is used, so a shifted base would not matter.
func preemptFromKallsyms(path string) preemptLocation {
	syms, err := ksym.Lookup(path, "runqueues", "__preempt_count")
	if err != nil {
		return preemptLocation{desc: err.Error()}
	}
	rq, okRq := syms["runqueues"]
	pc, okPc := syms["__preempt_count"]
	if !okRq || !okPc {
		return preemptLocation{desc: "runqueues and __preempt_count not in " + path + " (or their addresses hidden by kptr_restrict)"}
	}
	// Both are in the per-CPU section, a few hundred KiB at most.
	if d := int64(pc - rq); d > 1<<24 || d < -(1<<24) {
		return preemptLocation{desc: "runqueues and __preempt_count in " + path + " are not per-CPU offsets"}
	}
	return preemptLocation{src: allocPreemptSourcePREEMPT_PERCPU, rqOff: rq, pcOff: pc, desc: "per-CPU __preempt_count, offsets from " + path}
}

var errNoKernelBTF = errors.New("kernel BTF not available")
