package doctor

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ShmSegment is a System V shared memory segment from /proc/sysvipc/shm:
// where databases of the seed's kind (Oracle's SGA) keep their buffer
// cache.
type ShmSegment struct {
	Key    int64  `json:"key"`
	ID     int64  `json:"shmid"`
	Perms  uint32 `json:"perms"`
	Size   uint64 `json:"size"`
	CPID   int    `json:"cpid"`
	LPID   int    `json:"lpid"`
	Attach uint64 `json:"nattch"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	// RSS is in bytes, when the kernel prints it (3.x+); for a hugetlb
	// segment it counts the huge pages.
	RSS    uint64 `json:"rss,omitempty"`
	HasRSS bool   `json:"-"`
}

// readShm reads /proc/sysvipc/shm. A kernel without SysV IPC has no such
// file: no segments, no error.
func readShm(procRoot string) ([]ShmSegment, error) {
	path := filepath.Join(procRoot, "sysvipc/shm")
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	segs, err := parseShm(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return segs, nil
}

// maxSegments bounds what one file may hold (kernel.shmmni is 4096 by
// default, 32768 at most).
const maxSegments = 1 << 16

// parseShm parses the table: a header naming the columns, then one line
// per segment. Columns are found by name, since 2.6 had no rss/swap.
func parseShm(r io.Reader) ([]ShmSegment, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("empty file, want a header line")
	}
	cols := map[string]int{}
	for i, name := range strings.Fields(sc.Text()) {
		cols[name] = i
	}
	for _, need := range []string{"key", "shmid", "perms", "size", "cpid", "lpid", "nattch", "uid", "gid"} {
		if _, ok := cols[need]; !ok {
			return nil, fmt.Errorf("line 1: no %q column in %q", need, truncate(sc.Text()))
		}
	}
	var segs []ShmSegment
	for n := 2; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < len(cols) {
			return nil, fmt.Errorf("line %d: %d fields, want %d", n, len(f), len(cols))
		}
		if len(segs) >= maxSegments {
			return nil, fmt.Errorf("line %d: more than %d segments", n, maxSegments)
		}
		var s ShmSegment
		var err error
		num := func(name string, bits int) uint64 {
			if err != nil {
				return 0
			}
			var v uint64
			v, err = strconv.ParseUint(f[cols[name]], 10, bits)
			if err != nil {
				err = fmt.Errorf("line %d: %s %q is not a number", n, name, truncate(f[cols[name]]))
			}
			return v
		}
		key, kerr := strconv.ParseInt(f[cols["key"]], 10, 64)
		if kerr != nil {
			return nil, fmt.Errorf("line %d: key %q is not a number", n, truncate(f[cols["key"]]))
		}
		s.Key = key
		s.ID = int64(num("shmid", 31))
		perms, perr := strconv.ParseUint(f[cols["perms"]], 8, 32)
		if perr != nil {
			return nil, fmt.Errorf("line %d: perms %q is not octal", n, truncate(f[cols["perms"]]))
		}
		s.Perms = uint32(perms)
		s.Size = num("size", 64)
		s.CPID = int(num("cpid", 31))
		s.LPID = int(num("lpid", 31))
		s.Attach = num("nattch", 64)
		s.UID = uint32(num("uid", 32))
		s.GID = uint32(num("gid", 32))
		if i, ok := cols["rss"]; ok && i < len(f) {
			s.RSS, s.HasRSS = num("rss", 64), true
		}
		if err != nil {
			return nil, err
		}
		segs = append(segs, s)
	}
	return segs, sc.Err()
}
