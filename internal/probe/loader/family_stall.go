package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"

	"github.com/memtrace/memtrace/internal/decode/kenum"
	"github.com/memtrace/memtrace/internal/event"
)

// What the reclaim and compaction families share: candidates made of many
// tracepoints, some of which a kernel may lack (mm_vmscan_throttled before
// 5.16, the memcg events without CONFIG_MEMCG), the stall kinds and the
// histogram.

// tpHook is one program of a stall family and the tracepoint it is for.
type tpHook struct {
	prog         string
	group, event string
	optional     bool // the family works without it; reported when missing
}

// tpHooks is a stall family's programs on one hook type.
type tpHooks struct {
	kind  string // "tp_btf" or "tracepoint"
	name  string // the candidate's name, e.g. "tp_btf/mm_vmscan_*"
	hooks []tpHook
	note  string
	// choose may drop programs that do not fit the kernel (one of two
	// prototypes of a tracepoint); it runs before the optional check.
	choose func(spec *ebpf.CollectionSpec, kernel *btf.Spec) error
}

// candidate makes the family's candidate for this hook type. Optional
// tracepoints the kernel lacks (no btf_trace_<event> in its BTF, which
// exists exactly when the tracepoint does) are dropped before load, and
// the hook's name says which.
func (h tpHooks) candidate() candidate {
	progs := make([]string, 0, len(h.hooks))
	for _, x := range h.hooks {
		progs = append(progs, x.prog)
	}
	return candidate{
		name: h.name, programs: progs, needsTracefs: h.kind == "tracepoint", note: h.note,
		prepare: func(spec *ebpf.CollectionSpec, kernel *btf.Spec) (string, error) {
			if h.choose != nil {
				if err := h.choose(spec, kernel); err != nil {
					return "", err
				}
			}
			var missing []string
			for _, x := range h.hooks {
				if !x.optional || hasTracepoint(kernel, x.event) {
					continue
				}
				delete(spec.Programs, x.prog)
				missing = append(missing, x.event)
			}
			if len(missing) == 0 {
				return h.name, nil
			}
			sort.Strings(missing)
			return fmt.Sprintf("%s (without %s: not in this kernel)", h.name, strings.Join(missing, ", ")), nil
		},
		attach: h.attach,
	}
}

// attach attaches every program of h that was loaded, all or none.
func (h tpHooks) attach(coll *ebpf.Collection) ([]link.Link, error) {
	var links []link.Link
	for _, x := range h.hooks {
		p := coll.Programs[x.prog]
		if p == nil {
			if x.optional || h.choose != nil {
				continue // dropped by prepare
			}
			closeLinks(links)
			return nil, fmt.Errorf("program %s was not loaded", x.prog)
		}
		var l link.Link
		var err error
		if h.kind == "tracepoint" {
			l, err = link.Tracepoint(x.group, x.event, p, nil)
		} else {
			l, err = link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceRawTp})
		}
		if err != nil {
			closeLinks(links)
			return nil, fmt.Errorf("attaching %s program %s to %s: %w", h.kind, x.prog, x.event, err)
		}
		links = append(links, l)
	}
	return links, nil
}

// hasTracepoint reports whether the kernel defines the tracepoint.
func hasTracepoint(kernel *btf.Spec, name string) bool {
	if kernel == nil {
		return true // let the load or attach say why not
	}
	var td *btf.Typedef
	return kernel.TypeByName("btf_trace_"+name, &td) == nil
}

// tracepointParams is the number of arguments of a tracepoint's
// prototype (without the leading void *), or -1 when BTF does not say.
func tracepointParams(kernel *btf.Spec, name string) int {
	if kernel == nil {
		return -1
	}
	var td *btf.Typedef
	if kernel.TypeByName("btf_trace_"+name, &td) != nil {
		return -1
	}
	ptr, ok := td.Type.(*btf.Pointer)
	if !ok {
		return -1
	}
	proto, ok := ptr.Target.(*btf.FuncProto)
	if !ok || len(proto.Params) == 0 {
		return -1
	}
	return len(proto.Params) - 1
}

// stallKinds names enum stall_kind of bpf/stall.h.
var stallKinds = map[reclaimStallKind]event.StallKind{
	reclaimStallKindSTALL_DIRECT_RECLAIM:   event.StallDirectReclaim,
	reclaimStallKindSTALL_MEMCG_RECLAIM:    event.StallMemcgReclaim,
	reclaimStallKindSTALL_NODE_RECLAIM:     event.StallNodeReclaim,
	reclaimStallKindSTALL_THROTTLED:        event.StallThrottled,
	reclaimStallKindSTALL_KSWAPD_WAKEUP:    event.StallKswapdWakeup,
	reclaimStallKindSTALL_KSWAPD_RUN:       event.StallKswapdRun,
	reclaimStallKindSTALL_COMPACTION:       event.StallCompaction,
	reclaimStallKindSTALL_KCOMPACTD_WAKEUP: event.StallKcompactdWakeup,
}

func stallKindOf(k uint8) event.StallKind {
	if s, ok := stallKinds[reclaimStallKind(k)]; ok {
		return s
	}
	return event.StallKind(fmt.Sprintf("unknown(%d)", k))
}

// histogram copies an in-kernel histogram without its trailing empty
// slots.
func histogram(slots []uint64) event.StallHistogram {
	n := len(slots)
	for n > 0 && slots[n-1] == 0 {
		n--
	}
	return append(event.StallHistogram(nil), slots[:n]...)
}

// stallKey is struct stall_key of bpf/stall.h; the compaction bindings
// embed an identical struct, which converts to it.
type stallKey = reclaimStallKey

var _ = compactionStallKey(stallKey{})

// kernelEnum names enum name's members (those starting with prefix) as the
// running kernel defines them, read from its parsed BTF; without BTF or the
// enum the names say why and values print as numbers.
func kernelEnum(kernel *btf.Spec, name, prefix string) *kenum.Names {
	if kernel == nil {
		return kenum.FromMembers(name, prefix, nil, errors.New("no kernel BTF"))
	}
	var e *btf.Enum
	if err := kernel.TypeByName(name, &e); err != nil {
		return kenum.FromMembers(name, prefix, nil, fmt.Errorf("reading enum %s from kernel BTF: %w", name, err))
	}
	members := make([]kenum.Member, len(e.Values))
	for i, v := range e.Values {
		val := int64(v.Value)
		if e.Signed {
			val = int64(int32(v.Value))
		}
		members[i] = kenum.Member{Name: v.Name, Value: val}
	}
	return kenum.FromMembers(name, prefix, members, nil)
}

// stallStacks configures a stall family's stacks (bpf/stall.h): on only
// with a threshold and StallStacks; off, its slots map (DEFINE_STALL_STACKS)
// is cut to one entry, which costs no memory. It is the family's
// configure step, so the constant and the map size are set before the
// maps every candidate shares are created.
func stallStacks(slots string) func(Config, *ebpf.CollectionSpec) error {
	return func(cfg Config, spec *ebpf.CollectionSpec) error {
		on := cfg.StallStacks && cfg.StallThreshold > 0
		v, ok := spec.Variables[stallStacksVar]
		if !ok {
			return fmt.Errorf("the BPF object has no variable %s", stallStacksVar)
		}
		var set uint32
		if on {
			set = 1
		}
		if err := v.Set(set); err != nil {
			return fmt.Errorf("setting %s: %w", stallStacksVar, err)
		}
		if m := spec.Maps[slots]; m != nil && !on {
			m.MaxEntries = 1
		}
		return nil
	}
}

const stallStacksVar = reclaimVarSTALL_STACKS

// decodeStallRecord decodes a record ending in a stall stack, which the
// programs leave out without a threshold (STALL_RECORD_SIZE): the missing
// stack reads as empty. A record shorter than that is an error.
func decodeStallRecord(raw []byte, v any, stackSize int) error {
	if n := binary.Size(v); len(raw) < n {
		if len(raw) < n-stackSize {
			return fmt.Errorf("decoding record of %d bytes: want %d, or %d without its stack", len(raw), n, n-stackSize)
		}
		full := make([]byte, n)
		copy(full, raw)
		raw = full
	}
	return decodeRecord(raw, v)
}

// stallStackAddrs copies the n frames of a record's stack.
func stallStackAddrs(ips []uint64, n uint32) []uint64 {
	if n == 0 {
		return nil
	}
	return slices.Clone(ips[:min(int(n), len(ips))])
}
