package hugepages

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Segment is one System V shared memory segment of /proc/sysvipc/shm.
// The file does not say whether a segment is on huge pages: that is known
// only from the smaps of a process that attaches it (see Report).
type Segment struct {
	Key    int32  `json:"key"`
	ShmID  int64  `json:"shmid"`
	Perms  uint32 `json:"perms"` // octal mode bits, SHM_DEST (01000) when removed but attached
	Size   uint64 `json:"size"`
	Cpid   int    `json:"cpid"` // creator
	Lpid   int    `json:"lpid"` // last shmat/shmdt
	Nattch uint64 `json:"nattch"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	// RSSBytes is the resident memory of the segment (huge pages count
	// at their full size); absent on kernels before 4.x, then 0.
	RSSBytes  uint64 `json:"rss_bytes"`
	SwapBytes uint64 `json:"swap_bytes"`
}

// shmDest is SHM_DEST: the segment was removed (IPC_RMID) and goes away
// with its last detach.
const shmDest = 0o1000

// Removed reports a segment marked for destruction, alive only while
// attached.
func (s Segment) Removed() bool { return s.Perms&shmDest != 0 }

// ReadSysVShm reads procRoot/sysvipc/shm. A kernel without System V IPC
// has no such file: that reads as no segments.
func ReadSysVShm(procRoot string) ([]Segment, error) {
	path := filepath.Join(procRoot, "sysvipc", "shm")
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	segs, err := ParseSysVShm(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return segs, nil
}

// ParseSysVShm parses /proc/sysvipc/shm. Columns are found by their
// header names, which have been stable since 2.6 while columns were added
// (rss and swap in 3.x).
func ParseSysVShm(r io.Reader) ([]Segment, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("empty file, want a header line")
	}
	header := strings.Fields(sc.Text())
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, need := range []string{"key", "shmid", "perms", "size", "cpid", "lpid", "nattch", "uid", "gid"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("header has no %q column", need)
		}
	}
	var out []Segment
	line := 1
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != len(header) {
			return nil, fmt.Errorf("line %d: %d fields, want %d", line, len(f), len(header))
		}
		var s Segment
		var err error
		num := func(name string, base, bits int) int64 {
			i, ok := col[name]
			if !ok || err != nil {
				return 0
			}
			v, e := strconv.ParseInt(f[i], base, bits)
			if e != nil {
				err = fmt.Errorf("line %d: %s %q: %w", line, name, f[i], e)
			}
			return v
		}
		unum := func(name string, base, bits int) uint64 {
			i, ok := col[name]
			if !ok || err != nil {
				return 0
			}
			v, e := strconv.ParseUint(f[i], base, bits)
			if e != nil {
				err = fmt.Errorf("line %d: %s %q: %w", line, name, f[i], e)
			}
			return v
		}
		s.Key = int32(num("key", 10, 32))
		s.ShmID = num("shmid", 10, 64)
		s.Perms = uint32(unum("perms", 8, 32))
		s.Size = unum("size", 10, 64)
		s.Cpid = int(num("cpid", 10, 32))
		s.Lpid = int(num("lpid", 10, 32))
		s.Nattch = unum("nattch", 10, 64)
		s.UID = uint32(unum("uid", 10, 32))
		s.GID = uint32(unum("gid", 10, 32))
		s.RSSBytes = unum("rss", 10, 64)
		s.SwapBytes = unum("swap", 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, sc.Err()
}
