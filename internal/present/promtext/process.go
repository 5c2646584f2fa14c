package promtext

import (
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The process and Go runtime metrics every Prometheus exporter has, under
// the names dashboards and alerts already use (process_*, go_*): a subset
// of what Prometheus' own client reports, read from /proc/self and the
// runtime at scrape time.
var (
	cpuDesc      = NewDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", nil, nil)
	fdsDesc      = NewDesc("process_open_fds", "Number of open file descriptors.", nil, nil)
	maxFdsDesc   = NewDesc("process_max_fds", "Maximum number of open file descriptors.", nil, nil)
	vsizeDesc    = NewDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.", nil, nil)
	rssDesc      = NewDesc("process_resident_memory_bytes", "Resident memory size in bytes.", nil, nil)
	startDesc    = NewDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", nil, nil)
	goroutDesc   = NewDesc("go_goroutines", "Number of goroutines that currently exist.", nil, nil)
	threadsDesc  = NewDesc("go_threads", "Number of OS threads created.", nil, nil)
	heapDesc     = NewDesc("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use.", nil, nil)
	sysDesc      = NewDesc("go_memstats_sys_bytes", "Number of bytes obtained from system.", nil, nil)
	gcCyclesDesc = NewDesc("go_gc_cycles_total", "Number of completed GC cycles.", nil, nil)
	goInfoDesc   = NewDesc("go_info", "Information about the Go environment.", nil, map[string]string{"version": runtime.Version()})
)

// ProcessCollector reports this process's CPU, memory, file descriptors
// and start time, and the Go runtime's goroutines, threads, heap and
// collections. A value that cannot be read is left out of the scrape.
func ProcessCollector() Collector {
	return CollectorFunc(func(ch chan<- Metric) {
		if st, err := readStat(); err == nil {
			ch <- MustNewConstMetric(cpuDesc, CounterValue, st.cpuSeconds)
			ch <- MustNewConstMetric(vsizeDesc, GaugeValue, st.vsize)
			ch <- MustNewConstMetric(rssDesc, GaugeValue, st.rss)
			if st.start > 0 {
				ch <- MustNewConstMetric(startDesc, GaugeValue, st.start)
			}
		}
		if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
			ch <- MustNewConstMetric(fdsDesc, GaugeValue, float64(len(ents)))
		}
		var lim unix.Rlimit
		if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil {
			ch <- MustNewConstMetric(maxFdsDesc, GaugeValue, float64(lim.Cur))
		}
		ch <- MustNewConstMetric(goroutDesc, GaugeValue, float64(runtime.NumGoroutine()))
		n, _ := runtime.ThreadCreateProfile(nil)
		ch <- MustNewConstMetric(threadsDesc, GaugeValue, float64(n))
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
		metrics.Read(s)
		for i, d := range []*Desc{heapDesc, sysDesc, gcCyclesDesc} {
			if s[i].Value.Kind() == metrics.KindUint64 {
				t := GaugeValue
				if d == gcCyclesDesc {
					t = CounterValue
				}
				ch <- MustNewConstMetric(d, t, float64(s[i].Value.Uint64()))
			}
		}
		ch <- MustNewConstMetric(goInfoDesc, GaugeValue, 1)
	})
}

type procStat struct{ cpuSeconds, vsize, rss, start float64 }

// clockTicks is USER_HZ, 100 on every Linux architecture memtrace builds
// for (the kernel reports /proc times in it regardless of CONFIG_HZ).
const clockTicks = 100

// readStat reads /proc/self/stat; fields after the command name, which is
// in parentheses and may itself hold spaces and parentheses.
func readStat() (procStat, error) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return procStat{}, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return procStat{}, os.ErrInvalid
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime 15, starttime
	// 22, vsize 23, rss 24 (pages).
	if len(f) < 22 {
		return procStat{}, os.ErrInvalid
	}
	num := func(k int) float64 { v, _ := strconv.ParseUint(f[k-3], 10, 64); return float64(v) }
	st := procStat{
		cpuSeconds: (num(14) + num(15)) / clockTicks,
		vsize:      num(23),
		rss:        num(24) * float64(os.Getpagesize()),
	}
	if boot, err := bootTime(); err == nil {
		st.start = boot + num(22)/clockTicks
	}
	return st, nil
}

// bootTime is btime of /proc/stat, in seconds since the epoch.
func bootTime() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return float64(n), err
		}
	}
	return 0, os.ErrNotExist
}
