package sysstate

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// Snapshot is the memory state at one moment. A part that could not be
// read is left zero and its error is in Errors: a snapshot with some parts
// is more use to an operator than none.
type Snapshot struct {
	Time      time.Time         `json:"time"`
	Memory    Memory            `json:"memory"`
	HugePools []HugePool        `json:"hugepage_pools"`
	Vmstat    map[string]uint64 `json:"vmstat"` // the counters keepVmstat selects, those this kernel has
	Buddy     []ZoneFree        `json:"buddyinfo"`
	Sysctl    Sysctl            `json:"sysctl"`
	// PageblockOrder is the order compaction and migrate types work in (9
	// on x86: 2 MiB); PageblockOrderSource says how it was found, one of
	// the PageblockFrom* constants.
	PageblockOrder       int      `json:"pageblock_order"`
	PageblockOrderSource string   `json:"pageblock_order_source"`
	Errors               []string `json:"errors,omitempty"`
}

// Zone returns the zone of a node by name ("Normal", "DMA32").
func (s Snapshot) Zone(node int, name string) (ZoneFree, bool) {
	for _, z := range s.Buddy {
		if z.Node == node && z.Zone == name {
			return z, true
		}
	}
	return ZoneFree{}, false
}

// Take reads a snapshot from procfs and sysfs mounted at procRoot and
// sysRoot ("/proc", "/sys"). For repeated snapshots use a Reader, which
// reads /proc/pagetypeinfo once instead of every time.
func Take(procRoot, sysRoot string) Snapshot {
	r, err := NewReader(procRoot, sysRoot)
	if err != nil {
		return Snapshot{Time: time.Now(), Errors: []string{err.Error()}}
	}
	return r.Take()
}

// Reader takes snapshots of one procfs/sysfs pair. It is safe for
// concurrent use.
type Reader struct {
	procRoot, sysRoot string
	fs                procfs.FS

	// WatermarkMaxAge lets a live view reuse zone watermarks for this long
	// instead of parsing /proc/zoneinfo every time, which is most of the
	// cost of a snapshot (procfs matches a regexp on every line, and the
	// file has a block per CPU per zone). Watermarks only move when
	// min_free_kbytes or watermark_scale_factor change (then they are
	// re-read at once), on memory hotplug, or with watermark boosting,
	// which zoneinfo reports separately anyway. Zero, the default, reads
	// them every time. Set it before the first Take.
	WatermarkMaxAge time.Duration

	mu        sync.Mutex
	buf       []byte // for /proc/vmstat
	pageblock struct {
		order  int
		source string
		ok     bool
	}
	wm struct {
		marks       map[zoneKey]watermarks
		at          time.Time
		minFree     int64
		scaleFactor int64
	}
}

// NewReader checks that procRoot is a directory procfs can use.
func NewReader(procRoot, sysRoot string) (*Reader, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("opening procfs at %s: %w", procRoot, err)
	}
	return &Reader{procRoot: procRoot, sysRoot: sysRoot, fs: fs}, nil
}

// Take reads a snapshot.
func (r *Reader) Take() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()

	s := Snapshot{Time: time.Now()}
	fail := func(err error) { s.Errors = append(s.Errors, err.Error()) }

	var err error
	if s.Memory, err = readMemory(r.fs, r.procRoot); err != nil {
		fail(err)
	}
	if s.Buddy, err = readBuddy(r.fs, r.procRoot); err != nil {
		fail(err)
	}
	sysctl, errs := readSysctl(r.fs, r.procRoot)
	s.Sysctl = sysctl
	for _, err := range errs {
		fail(err)
	}
	if len(s.Buddy) > 0 {
		if err := r.watermarks(s.Time, s.Sysctl, s.Buddy); err != nil {
			fail(err)
		}
	}
	if s.Vmstat, r.buf, err = readVmstat(r.procRoot, r.buf); err != nil {
		fail(err)
	}
	if s.HugePools, err = readHugePools(r.sysRoot); err != nil {
		fail(err)
	}
	if err := r.readPageblock(&s); err != nil {
		fail(err)
	}
	return s
}

// watermarks fills the zones' watermarks, from the cache when allowed.
func (r *Reader) watermarks(now time.Time, sc Sysctl, zones []ZoneFree) error {
	c := &r.wm
	fresh := c.marks != nil && now.Sub(c.at) < r.WatermarkMaxAge &&
		c.minFree == sc.MinFreeKbytes && c.scaleFactor == sc.WatermarkScaleFactor
	if fresh && applyWatermarks(zones, c.marks, r.procRoot) == nil {
		return nil
	}
	marks, err := readWatermarks(r.fs, r.procRoot)
	if err != nil {
		c.marks = nil
		return err
	}
	c.marks, c.at, c.minFree, c.scaleFactor = marks, now, sc.MinFreeKbytes, sc.WatermarkScaleFactor
	return applyWatermarks(zones, marks, r.procRoot)
}

// readPageblock sets the pageblock order, which is fixed at boot: once
// found it is kept.
func (r *Reader) readPageblock(s *Snapshot) error {
	pb := &r.pageblock
	if !pb.ok {
		maxOrder := defaultMaxOrder
		if len(s.Buddy) > 0 {
			maxOrder = len(s.Buddy[0].FreeBlocks) - 1
		}
		order, source, err := readPageblockOrder(r.procRoot, r.sysRoot, s.Memory.HugepageSizeKB, maxOrder)
		if err != nil {
			return err
		}
		pb.order, pb.source, pb.ok = order, source, true
	}
	s.PageblockOrder, s.PageblockOrderSource = pb.order, pb.source
	return nil
}

// readVmstat reads /proc/vmstat, which procfs has no parser for. buf is
// reused between snapshots; the grown buffer is returned.
func readVmstat(procRoot string, buf []byte) (map[string]uint64, []byte, error) {
	path := filepath.Join(procRoot, "vmstat")
	data, err := readInto(path, buf)
	if err != nil {
		return nil, data, fileError(path, err)
	}
	m, err := parseVmstat(data, keepVmstat)
	if err != nil {
		return nil, data, fileError(path, err)
	}
	return m, data, nil
}

// readInto reads a whole file into buf, growing it as needed. os.ReadFile
// sees size 0 for a procfs file and starts from 512 bytes, so it takes
// several read calls for vmstat's 16 kB; a buffer that already fits takes
// one (plus the one that sees the end).
func readInto(path string, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	if cap(buf) < 32<<10 {
		buf = make([]byte, 0, 32<<10)
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
