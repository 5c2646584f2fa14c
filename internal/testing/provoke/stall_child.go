package provoke

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// readArgs and readResult are the child side of MemcgReclaim.
type readArgs struct {
	Path       string
	Join, Home string // cgroup files to enter and to go back to
	Thread     bool
}

type readResult struct{ Bytes int64 }

// opReadFile reads a file through, inside a memory cgroup if Join names
// one, then drops its pages so the cgroup holds no page cache when it is
// removed.
func opReadFile(_ *worker, raw json.RawMessage) (any, error) {
	var a readArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = 0 // touched before joining: not charged to the cgroup
	}
	f, err := os.Open(a.Path)
	if err != nil {
		return nil, fmt.Errorf("opening file to read: %w", err)
	}
	defer f.Close()
	if a.Join != "" {
		if err := joinCgroup(a.Join, a.Thread); err != nil {
			return nil, err
		}
	}
	var res readResult
	var rerr error
	for {
		n, err := f.Read(buf)
		res.Bytes += int64(n)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				rerr = fmt.Errorf("reading %s: %w", a.Path, err)
			}
			break
		}
	}
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	if a.Home != "" {
		if err := joinCgroup(a.Home, a.Thread); err != nil {
			return nil, errors.Join(rerr, err)
		}
	}
	return res, rerr
}

// poolArgs is the child side of Compaction: the pool size to write.
type poolArgs struct {
	Path string
	N    int64
}

// opSetPool writes a huge page pool size and returns the size the kernel
// reached: growing the pool allocates its pages in this thread.
func opSetPool(_ *worker, raw json.RawMessage) (any, error) {
	var a poolArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	if err := writeFile(a.Path, strconv.FormatInt(a.N, 10)); err != nil {
		return nil, fmt.Errorf("writing %d to %s: %w", a.N, a.Path, err)
	}
	return readInt(a.Path)
}
