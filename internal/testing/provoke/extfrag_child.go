package provoke

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// filler is the worker's state for ExtFrag: pipes full of data.
type filler struct {
	fds   []int
	total int64
	buf   []byte
	size  int // pipe capacity asked for
}

var fill *filler // worker thread only

func opFill(w *worker, raw json.RawMessage) (any, error) {
	var a fillArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	if fill == nil {
		fill = &filler{buf: make([]byte, 1<<20), size: pipeMaxSize()}
		w.state["fill"] = releaseFill
	}
	for want := fill.total + a.Bytes; fill.total < want; {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
				break // out of descriptors: report what we hold
			}
			return nil, fmt.Errorf("creating pipe: %w", err)
		}
		fill.fds = append(fill.fds, p[0], p[1])
		// Bigger pipes, fewer descriptors; root without CAP_SYS_RESOURCE
		// may go up to pipe-max-size.
		unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, fill.size)
		for {
			n, err := unix.Write(p[1], fill.buf)
			if n > 0 {
				fill.total += int64(n)
			}
			if err != nil || n < len(fill.buf) {
				if err != nil && !errors.Is(err, unix.EAGAIN) {
					return nil, fmt.Errorf("writing pipe: %w", err)
				}
				break // full
			}
		}
	}
	return fillResult{Total: fill.total, Pipes: len(fill.fds) / 2}, nil
}

func opRelease(w *worker, _ json.RawMessage) (any, error) {
	var res fillResult
	if fill != nil {
		res = fillResult{Total: fill.total, Pipes: len(fill.fds) / 2}
	}
	releaseFill()
	delete(w.state, "fill")
	return res, nil
}

func releaseFill() {
	if fill == nil {
		return
	}
	closeAll(fill.fds)
	fill = nil
}

func pipeMaxSize() int {
	b, err := os.ReadFile("/proc/sys/fs/pipe-max-size")
	if err != nil {
		return 1 << 20
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return 1 << 20
	}
	return n
}
