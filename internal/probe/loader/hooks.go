package loader

import (
	"fmt"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// candidate is one way of attaching a signal family.
type candidate struct {
	name         string
	programs     []string
	needsTracefs bool
	// tracefsFallback: the attach falls back to tracefs (kprobes without
	// the kprobe PMU). cilium/ebpf looks for tracefs once per process and
	// keeps the answer, so tracefs must be mounted before the first try,
	// or every later tracepoint attach fails too.
	tracefsFallback bool
	note            string
	// usable, when set, says before anything is loaded why the candidate
	// cannot attach on this host (nil: try it), so that the verifier does
	// not check a program that has nowhere to go.
	usable func(s *Session) error
	// prepare adjusts the spec before load (attach targets) and returns the
	// hook's name as it will be attached; it may refuse.
	prepare func(spec *ebpf.CollectionSpec, kernel *btf.Spec) (string, error)
	attach  func(coll *ebpf.Collection) ([]link.Link, error)
}

// attachEach attaches every program with one attach function, all or none.
func attachEach(attach func(prog string, p *ebpf.Program) (link.Link, error), progs ...string) func(*ebpf.Collection) ([]link.Link, error) {
	return func(coll *ebpf.Collection) ([]link.Link, error) {
		var links []link.Link
		for _, prog := range progs {
			l, err := attach(prog, coll.Programs[prog])
			if err != nil {
				closeLinks(links)
				return nil, err
			}
			links = append(links, l)
		}
		return links, nil
	}
}

// tpBTF attaches BTF-typed tracepoint programs (raw tracepoints with BTF).
func tpBTF(progs ...string) func(*ebpf.Collection) ([]link.Link, error) {
	return attachEach(func(name string, p *ebpf.Program) (link.Link, error) {
		l, err := link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return nil, fmt.Errorf("attaching tp_btf program %s: %w", name, err)
		}
		return l, nil
	}, progs...)
}

// fexitLinks attaches fentry/fexit programs to the target set at load.
func fexitLinks(progs ...string) func(*ebpf.Collection) ([]link.Link, error) {
	return attachEach(func(name string, p *ebpf.Program) (link.Link, error) {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			return nil, fmt.Errorf("attaching tracing program %s: %w", name, err)
		}
		return l, nil
	}, progs...)
}

// tracepoints attaches programs to classic tracepoints (group, name).
func tracepoints(tps map[string][2]string) func(*ebpf.Collection) ([]link.Link, error) {
	progs := make([]string, 0, len(tps))
	for p := range tps {
		progs = append(progs, p)
	}
	sort.Strings(progs)
	return attachEach(func(name string, p *ebpf.Program) (link.Link, error) {
		tp := tps[name]
		l, err := link.Tracepoint(tp[0], tp[1], p, nil)
		if err != nil {
			return nil, fmt.Errorf("attaching tracepoint %s/%s: %w", tp[0], tp[1], err)
		}
		return l, nil
	}, progs...)
}

func closeLinks(links []link.Link) {
	for _, l := range links {
		l.Close()
	}
}
