// Command provoke makes the kernel produce the memory events memtrace
// traces, for trying memtrace by hand:
//
//	provoke allocfail [-n 5] [-method pipe-resize|bpf-map] [-comm name]
//	provoke warnalloc [-comm name]
//	provoke extfrag [-min 3] [-comm name]
//	provoke huge [-op shmget|shmat|mmap|fallback] [-size-kb 2048] [-pages 1] [-repeat 1] [-reserve N] [-comm name]
//	provoke memcgreclaim [-comm name]
//	provoke compaction [-min 1] [-comm name]
//	provoke nodereclaim [-comm name]
//
// Each prints the report as JSON. It must run as root. Like test binaries
// importing the provoke package, it doubles as its own child process.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/memtrace/memtrace/internal/testing/provoke"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	// INT, TERM and HUP end a run early (its child gets them too) but not
	// provoke itself: it puts back the sysctls, pools, cgroups and files
	// it changed, then exits. Every run is bounded by its timeout.
	signal.Notify(make(chan os.Signal, 1), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	comm := fs.String("comm", "", "name of the child's worker thread")
	timeout := fs.Duration("timeout", 0, "give up after this long (0: the default)")
	var rep any
	var err error
	opts := func() []provoke.Option {
		var o []provoke.Option
		if *comm != "" {
			o = append(o, provoke.WithComm(*comm))
		}
		if *timeout > 0 {
			o = append(o, provoke.WithTimeout(*timeout))
		}
		return o
	}
	switch cmd {
	case "allocfail":
		n := fs.Int("n", 5, "allocation failures to provoke")
		method := fs.String("method", "", "pipe-resize or bpf-map (default: by cgroup version)")
		fs.Parse(args)
		rep, err = provoke.AllocFailures(*n, append(opts(), provoke.WithMethod(provoke.Method(*method)))...)
	case "warnalloc":
		fs.Parse(args)
		rep, err = provoke.WarnAllocFailure(opts()...)
	case "extfrag":
		min := fs.Int("min", 3, "mm_page_alloc_extfrag events to provoke")
		fs.Parse(args)
		rep, err = provoke.ExtFrag(*min, opts()...)
	case "huge":
		op := fs.String("op", "shmget", "shmget, shmat, mmap or fallback")
		sizeKB := fs.Uint64("size-kb", 0, "huge page size in kB (0: default, no size flag)")
		pages := fs.Int("pages", 1, "length in huge pages")
		repeat := fs.Int("repeat", 1, "requests to make")
		reserve := fs.Int("reserve", -1, "set the pool to this many pages first, restored after (-1: leave it)")
		fs.Parse(args)
		rep, err = huge(*op, *sizeKB, *pages, *repeat, *reserve, opts())
	case "memcgreclaim":
		fs.Parse(args)
		rep, err = provoke.MemcgReclaim(opts()...)
	case "nodereclaim":
		fs.Parse(args)
		rep, err = provoke.NodeReclaim(opts()...)
	case "compaction":
		min := fs.Int("min", 1, "direct compaction calls to provoke")
		fs.Parse(args)
		rep, err = provoke.Compaction(*min, opts()...)
	default:
		usage()
	}
	out, _ := json.MarshalIndent(rep, "", "  ")
	fmt.Println(string(out))
	if err != nil {
		fmt.Fprintln(os.Stderr, "provoke:", err)
		os.Exit(1)
	}
}

func huge(op string, sizeKB uint64, pages, repeat, reserve int, opts []provoke.Option) (provoke.Report, error) {
	ops := map[string]provoke.HugeOp{
		"shmget": provoke.ShmGet, "shmat": provoke.ShmAttach,
		"mmap": provoke.Mmap, "fallback": provoke.MmapFallback,
	}
	o, ok := ops[op]
	if !ok {
		usage()
	}
	if reserve >= 0 {
		restore, err := provoke.ReserveHugePages(sizeKB, reserve)
		if err != nil {
			return provoke.Report{}, err
		}
		defer func() {
			if err := restore(); err != nil {
				fmt.Fprintln(os.Stderr, "provoke:", err)
			}
		}()
	}
	return provoke.Huge(provoke.HugeRequest{Op: o, SizeKB: sizeKB, Pages: pages, Repeat: repeat}, opts...)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: provoke allocfail|warnalloc|extfrag|huge|memcgreclaim|compaction|nodereclaim [flags]  (-h for flags)")
	os.Exit(2)
}
