// Command startprof shows where memtrace's start-up time and memory go:
// it runs the loader's steps one at a time in a fresh process (kernel BTF
// is cached per process, so only a fresh one shows a real start) and
// prints the wall time, CPU time and Go heap of each, and optionally a CPU
// or heap profile of loader.Start. Evidence for docs/benchmarks.md.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
)

type step struct {
	Name     string  `json:"name"`
	WallMS   float64 `json:"wall_ms"`
	CPUMS    float64 `json:"cpu_ms"`
	HeapMiB  float64 `json:"heap_inuse_mib"`  // after the step
	AllocMiB float64 `json:"alloc_total_mib"` // allocated during the step
	RSSMiB   float64 `json:"rss_mib"`         // after the step
	HWMMiB   float64 `json:"hwm_mib"`
}

func main() {
	cpuprof := flag.String("cpuprofile", "", "write a CPU profile of the steps")
	memprof := flag.String("memprofile", "", "write a heap profile after Start")
	signals := flag.String("signals", "alloc,extfrag,hugetlb", "signals to open")
	loops := flag.Int("loops", 0, "profile only: Start and Close this many times under the CPU profile")
	flag.Parse()
	if *memprof != "" {
		// Every allocation, so that alloc_space shows where start-up's
		// garbage comes from, not a sample of it.
		runtime.MemProfileRate = 1
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			fail(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	cfg := loader.DefaultConfig()
	sigs, err := event.ParseSignals(*signals)
	if err != nil {
		fail(err)
	}
	cfg.Signals = sigs
	if *loops > 0 {
		var open time.Duration
		for i := 0; i < *loops; i++ {
			t0 := time.Now()
			s, err := loader.Start(cfg, loader.Naming{})
			if err != nil {
				fail(err)
			}
			open += time.Since(t0)
			pprof.StopCPUProfile() // Close is not start-up: leave it out
			s.Close()
			if i+1 < *loops {
				f, _ := os.Create(fmt.Sprintf("%s.%d", *cpuprof, i+1))
				pprof.StartCPUProfile(f)
			}
		}
		fmt.Printf("mean Start %.1f ms over %d loops\n", ms(open)/float64(*loops), *loops)
		return
	}
	var steps []step
	measure := func(name string, f func() error) {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		c0, t0 := cpuNow(), time.Now()
		if err := f(); err != nil {
			fail(fmt.Errorf("%s: %w", name, err))
		}
		wall, cpu := time.Since(t0), cpuNow()-c0
		runtime.ReadMemStats(&m1)
		steps = append(steps, step{name, ms(wall), ms(cpu), mib(m1.HeapInuse), mib(m1.TotalAlloc - m0.TotalAlloc),
			float64(statusKB("VmRSS")) / 1024, float64(statusKB("VmHWM")) / 1024})
	}
	steps = append(steps, step{Name: "process start (Go runtime, before main)", WallMS: sinceStart(), RSSMiB: float64(statusKB("VmRSS")) / 1024, HWMMiB: float64(statusKB("VmHWM")) / 1024})
	measure("btf.LoadKernelSpec (parse /sys/kernel/btf/vmlinux)", func() error {
		_, err := btf.LoadKernelSpec()
		return err
	})
	var s *loader.Session
	measure("loader.Start (its own BTF load, CO-RE, verify, attach, names)", func() error {
		var err error
		s, err = loader.Start(cfg, loader.Naming{})
		return err
	})
	measure("runtime.GC", func() error { runtime.GC(); return nil })
	if *memprof != "" {
		f, err := os.Create(*memprof)
		if err != nil {
			fail(err)
		}
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	measure("debug.FreeOSMemory", func() error {
		debug.FreeOSMemory()
		return nil
	})
	measure("Session.Close", func() error { return s.Close() })
	json.NewEncoder(os.Stdout).Encode(steps)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "startprof: %v\n", err)
	os.Exit(1)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func mib(b uint64) float64       { return float64(b) / (1 << 20) }

func cpuNow() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func statusKB(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == field {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return -1
}

// sinceStart is the time since the process was created, from its start
// time in clock ticks since boot.
func sinceStart() float64 {
	b, _ := os.ReadFile("/proc/self/stat")
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	start, _ := strconv.ParseFloat(fs[19], 64)
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return (float64(ts.Nano())/1e9 - start/100) * 1000
}
