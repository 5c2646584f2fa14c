// Command pagetouch is the benchmark's page-allocation workload: map
// anonymous memory, write one byte in every 4 KiB page, unmap, repeat.
// Every first touch is a page fault that allocates one page, so the
// kmem:mm_page_alloc tracepoint fires once per page. It prints the elapsed
// time of the loop (not of process start-up) as one line of JSON.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const pageSize = 4096

func main() {
	size := flag.Int("mib", 256, "size of each mapping in MiB")
	iters := flag.Int("iters", 8, "map-touch-unmap cycles (0: run until -for elapses)")
	dur := flag.Duration("for", 0, "with -iters 0, run cycles for this long")
	flag.Parse()
	if *iters <= 0 && *dur <= 0 {
		fmt.Fprintln(os.Stderr, "pagetouch: need -iters > 0 or -for > 0")
		os.Exit(2)
	}
	n := *size << 20
	start := time.Now()
	cycles := 0
	for (*iters > 0 && cycles < *iters) || (*iters <= 0 && time.Since(start) < *dur) {
		if err := cycle(n); err != nil {
			fmt.Fprintf(os.Stderr, "pagetouch: %v\n", err)
			os.Exit(1)
		}
		cycles++
	}
	el := time.Since(start)
	pages := cycles * (n / pageSize)
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"ns": el.Nanoseconds(), "pages": pages, "ns_per_page": float64(el.Nanoseconds()) / float64(pages),
	})
}

func cycle(n int) error {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mapping %d bytes: %w", n, err)
	}
	// Transparent huge pages would turn 512 page allocations into one
	// order-9 allocation and change what is measured.
	if err := unix.Madvise(b, unix.MADV_NOHUGEPAGE); err != nil {
		return fmt.Errorf("disabling huge pages on the mapping: %w", err)
	}
	for i := 0; i < n; i += pageSize {
		b[i] = 1
	}
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("unmapping: %w", err)
	}
	return nil
}
