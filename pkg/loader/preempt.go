package loader

import (
	"errors"
	"runtime"

	"github.com/cilium/ebpf/btf"
)

// Values of enum preempt_source in bpf/common.h.
const (
	preemptNone       uint8 = 0
	preemptPercpu     uint8 = 1
	preemptThreadInfo uint8 = 2
)

// preemptLocation says where the programs find preempt_count, which tells
// softirq from hardirq from process context.
type preemptLocation struct {
	src   uint8
	rqOff uint64 // section offset of the per-CPU run queue
	pcOff uint64 // section offset of preempt_count
	desc  string
}

// findPreemptCount locates preempt_count on this kernel. x86 keeps it in a
// static per-CPU variable (__preempt_count, or inside pcpu_hot from 6.1 to
// 6.14); other architectures in thread_info.
func findPreemptCount(kernel *btf.Spec) preemptLocation {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "386" {
		return preemptLocation{src: preemptThreadInfo, desc: "thread_info.preempt.count"}
	}
	var ds *btf.Datasec
	if err := kernel.TypeByName(".data..percpu", &ds); err != nil {
		return preemptLocation{desc: "no per-CPU section in kernel BTF"}
	}
	offs := map[string]uint64{}
	types := map[string]btf.Type{}
	for _, v := range ds.Vars {
		if vv, ok := v.Type.(*btf.Var); ok {
			offs[vv.Name] = uint64(v.Offset)
			types[vv.Name] = vv.Type
		}
	}
	rq, ok := offs["runqueues"]
	if !ok {
		return preemptLocation{desc: "runqueues not in kernel BTF"}
	}
	if pc, ok := offs["__preempt_count"]; ok {
		return preemptLocation{src: preemptPercpu, rqOff: rq, pcOff: pc, desc: "per-CPU __preempt_count"}
	}
	if hot, ok := offs["pcpu_hot"]; ok {
		if st, ok := btf.UnderlyingType(types["pcpu_hot"]).(*btf.Struct); ok {
			for _, m := range st.Members {
				if m.Name == "preempt_count" {
					return preemptLocation{src: preemptPercpu, rqOff: rq, pcOff: hot + uint64(m.Offset.Bytes()), desc: "per-CPU pcpu_hot.preempt_count"}
				}
			}
		}
	}
	return preemptLocation{desc: "preempt_count not found in kernel BTF"}
}

var errNoKernelBTF = errors.New("kernel BTF not available")
