package provoke

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	extfragChunk = 16 << 20 // filled between two looks at the counter
	extfragMax   = 4 << 30  // never hold more than this
)

type fillArgs struct{ Bytes int64 }

type fillResult struct {
	Total int64 // bytes held in pipes
	Pipes int
}

// ExtFrag makes kmem:mm_page_alloc_extfrag fire at least min times from a
// child process, then frees everything, and reports how many events it saw
// and how much memory it took (Report.Bytes) and how long.
//
// Mechanism: the child writes data into pipes and keeps it there. Pipe
// buffer pages are GFP_HIGHUSER|__GFP_ACCOUNT: unmovable, because they lack
// __GFP_MOVABLE. Once the zone's unmovable free lists are empty, the
// allocator falls back to the movable free lists (__rmqueue_claim), claims
// a whole free block (order 10 on an idle machine, so fragmenting=0,
// change_ownership=1) for the unmovable type and fires the tracepoint:
// about one event per 4 MiB past the unmovable free memory.
//
// Freed pages go back to the claimed, now unmovable, pageblocks, so each
// run leaves the unmovable pool larger and the next run needs to fill it
// first: runs take longer the more of them there were since boot (typically
// tens to hundreds of MiB, well under a second). The fill stops at a
// quarter of MemAvailable or 4 GiB, with an error.
func ExtFrag(min int, opts ...Option) (rep Report, err error) {
	cfg := newConfig("mt-extfrag", 60*time.Second, opts)
	if min < 1 {
		return rep, fmt.Errorf("provoking extfrag: min = %d, want at least 1", min)
	}
	start := time.Now()
	maxBytes, err := extfragCap()
	if err != nil {
		return rep, err
	}
	s, err := newSession(hierarchy{}, cfg, 0, false)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, s.close()) }()
	if err := s.count("kmem", "mm_page_alloc_extfrag", ""); err != nil {
		return rep, err
	}
	rep.Syscall = "write(pipe)"
	var res fillResult
	for {
		if err := s.child.call("fill", fillArgs{Bytes: extfragChunk}, &res); err != nil {
			return rep, err
		}
		n, err := s.counter.Count()
		if err != nil {
			return rep, err
		}
		if n >= uint64(min) || res.Total >= maxBytes {
			break
		}
	}
	rep.Bytes = uint64(res.Total)
	if err := s.child.call("release", nil, nil); err != nil {
		return rep, err
	}
	if err := s.finish(&rep, failResult{}, start); err != nil {
		return rep, err
	}
	if rep.Events < uint64(min) {
		return rep, fmt.Errorf("provoking extfrag: %d MiB of unmovable pipe pages gave %d mm_page_alloc_extfrag events, want %d",
			res.Total>>20, rep.Events, min)
	}
	return rep, nil
}

// extfragCap is how much memory ExtFrag may hold.
func extfragCap() (int64, error) {
	avail, err := meminfo("MemAvailable")
	if err != nil {
		return 0, fmt.Errorf("provoking extfrag: %w", err)
	}
	return min(int64(avail)*1024/4, extfragMax), nil
}

// meminfo returns a /proc/meminfo value (in kB for sizes).
func meminfo(key string) (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			break
		}
		return strconv.ParseUint(fields[0], 10, 64)
	}
	return 0, fmt.Errorf("reading %s from /proc/meminfo: not found", key)
}
