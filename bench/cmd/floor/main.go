// Command floor attaches the benchmark's empty BPF programs to memtrace's
// hooks and holds them until SIGINT or SIGTERM. Its cost is the floor: what
// any BPF tool pays on these hooks before doing any work.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/memtrace/memtrace/bench/bpfgen"
)

func main() {
	ready := flag.String("ready-file", "", "create this file once every program is attached")
	only := flag.Bool("page-alloc-only", false, "attach only the mm_page_alloc program")
	stalls := flag.Bool("stall-hooks", false, "attach empty programs on the stall families' 18 tracepoints instead")
	flag.Parse()
	run := run
	if *stalls {
		run = func(ready string, _ bool) error { return runStalls(ready) }
	}
	if err := run(*ready, *only); err != nil {
		fmt.Fprintf(os.Stderr, "floor: %v\n", err)
		os.Exit(1)
	}
}

func run(ready string, only bool) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	var objs bpfgen.EmptyObjects
	if err := bpfgen.LoadEmptyObjects(&objs, nil); err != nil {
		return fmt.Errorf("loading empty programs: %w", err)
	}
	defer objs.Close()
	var links []link.Link
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()
	btfProgs := []*ebpf.Program{objs.EmptyPageAlloc, objs.EmptyExtfrag, objs.EmptyTaskExit}
	if only {
		btfProgs = btfProgs[:1]
	}
	for _, p := range btfProgs {
		l, err := link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return fmt.Errorf("attaching tp_btf program: %w", err)
		}
		links = append(links, l)
	}
	tps := []struct {
		name string
		prog *ebpf.Program
	}{
		{"sys_enter_shmget", objs.EmptyShmgetEnter}, {"sys_exit_shmget", objs.EmptyShmgetExit},
		{"sys_enter_mmap", objs.EmptyMmapEnter}, {"sys_exit_mmap", objs.EmptyMmapExit},
		{"sys_enter_shmat", objs.EmptyShmatEnter}, {"sys_exit_shmat", objs.EmptyShmatExit},
	}
	if only {
		tps = nil
	}
	for _, tp := range tps {
		l, err := link.Tracepoint("syscalls", tp.name, tp.prog, nil)
		if err != nil {
			return fmt.Errorf("attaching tracepoint syscalls/%s: %w", tp.name, err)
		}
		links = append(links, l)
	}
	if ready != "" {
		if err := os.WriteFile(ready, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("writing ready file: %w", err)
		}
	}
	<-sig
	return nil
}

// runStalls is the floor of the stall families: an empty tp_btf program on
// each tracepoint they attach to.
func runStalls(ready string) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	spec, err := bpfgen.StallEmptySpec()
	if err != nil {
		return fmt.Errorf("reading the stall floor's programs: %w", err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return fmt.Errorf("loading the stall floor's programs: %w", err)
	}
	defer coll.Close()
	var links []link.Link
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()
	for name, p := range coll.Programs {
		l, err := link.AttachTracing(link.TracingOptions{Program: p, AttachType: ebpf.AttachTraceRawTp})
		if err != nil {
			return fmt.Errorf("attaching %s: %w", name, err)
		}
		links = append(links, l)
	}
	if ready != "" {
		if err := os.WriteFile(ready, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
			return fmt.Errorf("writing ready file: %w", err)
		}
	}
	<-sig
	return nil
}
