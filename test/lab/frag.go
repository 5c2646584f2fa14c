package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fragmenter holds memory so that most free memory is in order-0 blocks:
// it touches nearly all free memory, gives back every other page and
// keeps the rest locked. With vm.compact_unevictable_allowed=0 the
// locked pages cannot be migrated, so compaction cannot rebuild
// higher-order blocks around them.
type fragmenter struct {
	mu      sync.Mutex
	reserve int // huge pages taken before fragmenting, for the valve
	regions [][]byte
	given   int // regions given back by the valve
	stop    chan struct{}
	done    chan struct{}
}

// The safety valve: in a guest whose free memory is order-0 holes kept
// by locked pages, a request of order 1 to 3 that may sleep and must not
// fail (a new slab of a cache whose smallest order is above 0, a PGD)
// finds nothing that compaction may build, and the kernel's last way out
// is the OOM killer, whose victim is the lab (it holds the locked memory).
// Such a request enters direct reclaim or compaction first, which
// compact_stall and allocstall_* count; the atomic tries the lab is after
// never do (they cannot sleep), nor do SLUB's higher-order first tries,
// from which SLUB takes the reclaim flags. So a stall is the sign: the
// valve gives a region back (its locked pages beside their holes: a block
// of up to 1 MiB), and the kernel's next retry finds it.
const valvePoll = 10 * time.Millisecond

// valveHugePages is the valve's reserve: huge pages taken before
// fragmenting and given back one at a time, before any region.
const valveHugePages = 4

// meminfo returns a /proc/meminfo field in KiB.
func meminfo(field string) (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("opening /proc/meminfo: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && k == field {
			return strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("finding %s in /proc/meminfo", field)
}

// fragment takes memory in chunks until MemFree is down to leaveKB, then
// frees every other page of what it took.
func (fr *fragmenter) fragment(leaveKB uint64) (takenKB uint64, err error) {
	page := os.Getpagesize()
	for {
		free, err := meminfo("MemFree")
		if err != nil {
			return takenKB, err
		}
		// Big steps first, then 1 MiB ones: what is left unfragmented
		// is where the high-order blocks are.
		chunk := 16 << 20
		if free < leaveKB+32<<10 {
			chunk = 1 << 20
		}
		if free < leaveKB+uint64(chunk>>10) {
			break
		}
		b, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return takenKB, fmt.Errorf("mapping %d bytes: %w", chunk, err)
		}
		// Huge pages would be one block each: freeing half of a THP
		// splits it back into the buddy allocator as whole blocks.
		if err := unix.Madvise(b, unix.MADV_NOHUGEPAGE); err != nil {
			return takenKB, fmt.Errorf("madvise NOHUGEPAGE: %w", err)
		}
		for i := 0; i < len(b); i += page {
			b[i] = 1
		}
		fr.regions = append(fr.regions, b)
		takenKB += uint64(chunk >> 10)
	}
	for _, b := range fr.regions {
		for i := page; i < len(b); i += 2 * page {
			if err := unix.Madvise(b[i:i+page], unix.MADV_DONTNEED); err != nil {
				return takenKB, fmt.Errorf("madvise DONTNEED: %w", err)
			}
		}
		// Lock what is still there without faulting the holes back in.
		if _, _, e := unix.Syscall(unix.SYS_MLOCK2, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MLOCK_ONFAULT); e != 0 {
			return takenKB, fmt.Errorf("mlock2 ONFAULT: %w", e)
		}
	}
	return takenKB, nil
}

const nrHugepages = "/proc/sys/vm/nr_hugepages"

// reserveHuge takes n huge pages before fragmenting: whole 2 MiB blocks
// the valve can give back at once (the caller restores the pool).
func (fr *fragmenter) reserveHuge(n int) error {
	if err := os.WriteFile(nrHugepages, []byte(strconv.Itoa(n)), 0o644); err != nil {
		return fmt.Errorf("reserving %d huge pages: %w", n, err)
	}
	got, err := strconv.Atoi(strings.TrimSpace(readFile(nrHugepages)))
	if err != nil {
		return fmt.Errorf("reading vm.nr_hugepages: %w", err)
	}
	fr.reserve = got
	return nil
}

// startValve watches for stalls while the lab runs on fragmented memory
// and gives regions back, smallest (last taken) first, at each one.
func (fr *fragmenter) startValve() {
	fr.stop, fr.done = make(chan struct{}), make(chan struct{})
	last := stalls()
	go func() {
		defer close(fr.done)
		for {
			select {
			case <-fr.stop:
				return
			case <-time.After(valvePoll):
			}
			n := stalls()
			if n == last {
				continue
			}
			last = n
			fr.mu.Lock()
			// A reserved huge page first: 2 MiB free at once. A region's
			// locked pages come back beside holes that other allocations
			// may have filled since.
			if fr.reserve > 0 {
				fr.reserve--
				if os.WriteFile(nrHugepages, []byte(strconv.Itoa(fr.reserve)), 0o644) == nil {
					fr.given++
					fr.mu.Unlock()
					continue
				}
			}
			if n := len(fr.regions); n > 0 {
				unix.Munmap(fr.regions[n-1])
				fr.regions = fr.regions[:n-1]
				fr.given++
			}
			fr.mu.Unlock()
		}
	}()
}

func (fr *fragmenter) stopValve() {
	if fr.stop != nil {
		close(fr.stop)
		<-fr.done
		fr.stop = nil
	}
}

// opened is how many regions the valve has given back so far.
func (fr *fragmenter) opened() int {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.given
}

func (fr *fragmenter) release() {
	fr.stopValve()
	fr.mu.Lock()
	defer fr.mu.Unlock()
	for _, b := range fr.regions {
		unix.Munmap(b)
	}
	fr.regions = nil
}

// stalls is the direct compaction and direct reclaim stalls since boot.
func stalls() uint64 { return stallsIn(readFile("/proc/vmstat")) }

func stallsIn(vmstat string) uint64 {
	var n uint64
	for _, line := range strings.Split(vmstat, "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && (k == "compact_stall" || strings.HasPrefix(k, "allocstall_")) {
			c, _ := strconv.ParseUint(v, 10, 64)
			n += c
		}
	}
	return n
}

// vmstat reads one /proc/vmstat counter (0 when absent).
func vmstat(name string) uint64 {
	for _, line := range strings.Split(readFile("/proc/vmstat"), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == name {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}

// prctlSubreaper makes the lab the reaper of its descendants' orphans.
func prctlSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("becoming a child subreaper: %w", err)
	}
	return nil
}

// sysctls sets /proc/sys values and remembers the old ones for restore.
type sysctls map[string]string

func (s sysctls) set(name, value string) error {
	p := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	old, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if _, ok := s[name]; !ok {
		s[name] = strings.TrimSpace(string(old))
	}
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("setting %s=%s: %w", name, value, err)
	}
	return nil
}

func (s sysctls) restore() {
	for name, v := range s {
		os.WriteFile("/proc/sys/"+strings.ReplaceAll(name, ".", "/"), []byte(v), 0o644)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
