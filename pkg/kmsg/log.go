package kmsg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Log is the allocation failures found in one kernel log.
type Log struct {
	// Source is DevKmsg, "dmesg" or the file read.
	Source string `json:"source"`
	// Live is true for the running kernel's own log; its wall times come
	// from BootTime.
	Live bool      `json:"live"`
	Boot time.Time `json:"boot,omitzero"`
	// Tried says why sources tried before Source failed.
	Tried []string `json:"tried,omitempty"`
	// Bytes is how much of a copy was read, MaxBytes the most it would
	// read: FileOptions.MaxBytes, or the size a Regular file had when
	// opened. Truncated says reading stopped there with more to come;
	// Interrupted that it was stopped (Ctrl-C): the result covers what
	// was read until then.
	Bytes       int64 `json:"bytes,omitempty"`
	MaxBytes    int64 `json:"max_bytes,omitempty"`
	Regular     bool  `json:"regular,omitempty"`
	Truncated   bool  `json:"truncated,omitempty"`
	Interrupted bool  `json:"interrupted,omitempty"`
	Result
}

// LiveOptions say where to find the running kernel's log.
type LiveOptions struct {
	DevKmsg string // DevKmsg when empty
	// Dmesg is the command run when DevKmsg cannot be read ("dmesg" when
	// empty; "-" to not run any).
	Dmesg string
	// Since leaves failures logged before it out of the groups (zero:
	// none left out).
	Since time.Time
}

// dmesgTimeout bounds the fallback command.
const dmesgTimeout = 5 * time.Second

// ReadLive reads the running kernel's log: /dev/kmsg, else the output of
// dmesg (in a container without /dev/kmsg, or with a dmesg that has
// another way in). The error says why every source failed.
func ReadLive(ctx context.Context, opt LiveOptions) (*Log, error) {
	dev := opt.DevKmsg
	if dev == "" {
		dev = DevKmsg
	}
	boot, bootErr := BootTime()
	p := Parser{Since: opt.Since}
	err := ReadDevKmsg(ctx, dev, boot, p.Feed)
	if err == nil || ctx.Err() != nil && p.records > 0 {
		return &Log{Source: dev, Live: true, Boot: boot, Interrupted: err != nil, Result: p.Result()}, nil
	}
	tried := []string{fmt.Sprintf("%s: %v", dev, cleanPathErr(err, dev))}
	errs := []error{fmt.Errorf("reading %s: %w", dev, cleanPathErr(err, dev))}
	cmd := opt.Dmesg
	if cmd == "" {
		cmd = "dmesg"
	}
	if cmd != "-" {
		q := Parser{Since: opt.Since}
		derr := runDmesg(ctx, cmd, TextOptions{Boot: boot}, q.Feed)
		if derr == nil {
			l := &Log{Source: "dmesg", Live: true, Boot: boot, Tried: tried, Result: q.Result()}
			return l, nil
		}
		errs = append(errs, fmt.Errorf("running %s: %w", cmd, derr))
	}
	if bootErr != nil {
		errs = append(errs, bootErr)
	}
	return nil, joined(errs)
}

// joined is errors.Join on one line: the sources tried, "; "-separated.
type joined []error

func (j joined) Error() string {
	s := make([]string, len(j))
	for i, e := range j {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

func (j joined) Unwrap() []error { return j }

// cleanPathErr drops the path from an *os.PathError that names it
// already, so messages do not say it twice.
func cleanPathErr(err error, path string) error {
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Path == path {
		return pe.Err
	}
	return err
}

func runDmesg(ctx context.Context, name string, opt TextOptions, fn func(Record)) error {
	ctx, cancel := context.WithTimeout(ctx, dmesgTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, name)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.StdoutPipe()
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return err
	}
	// Parse while dmesg writes; the log can be megabytes.
	perr := ReadText(out, opt, fn)
	if err := c.Wait(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, firstLine(msg))
		}
		return err
	}
	return perr
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// FileOptions say how to read a copy of a log.
type FileOptions struct {
	Text TextOptions
	// MaxBytes bounds what is read from a source that may never end: a
	// pipe, a FIFO, a device, standard input that is not a file. 0 means
	// DefaultMaxBytes, a negative value no bound. A regular file is read
	// up to the size it had when opened (a log still being written grows
	// while we read it).
	MaxBytes int64
	// Since leaves failures logged before it out of the groups.
	Since time.Time
}

// DefaultMaxBytes is FileOptions.MaxBytes when not set: far more than a
// kernel's log buffer (32 MiB at most) or journalctl -k of a busy host
// for days, and read in seconds, so `memtrace doctor --kmsg-file
// /dev/urandom` ends instead of reading until killed.
const DefaultMaxBytes = 256 << 20

// ReadFile reads a copy of a kernel log ("-" reads stdin). Its times
// since boot are not turned into wall times: the copy may come from
// another boot or host. A zero opt.Text.Now dates syslog lines by the
// file's modification time. When ctx ends, the log read so far is
// returned, marked Interrupted.
func ReadFile(ctx context.Context, path string, stdin io.Reader, opt FileOptions) (*Log, error) {
	var r io.Reader
	log := &Log{Source: path}
	if path == "-" {
		r = stdin
		if st, ok := stdin.(interface{ Stat() (os.FileInfo, error) }); ok {
			if fi, err := st.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
				log.Regular, log.MaxBytes = true, fi.Size()
			}
		}
	} else {
		f, err := openLog(ctx, path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, cleanPathErr(err, path))
		}
		if st.IsDir() {
			return nil, fmt.Errorf("%s is a directory", path)
		}
		if opt.Text.Now.IsZero() {
			opt.Text.Now = st.ModTime()
		}
		// Files of /proc and /sys say they are regular and empty.
		if st.Mode().IsRegular() && st.Size() > 0 {
			log.Regular, log.MaxBytes = true, st.Size()
		}
		// A FIFO or a pipe waits in the poller: a deadline wakes it.
		stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
		r = f
	}
	if !log.Regular {
		switch {
		case opt.MaxBytes == 0:
			log.MaxBytes = DefaultMaxBytes
		case opt.MaxBytes > 0:
			log.MaxBytes = opt.MaxBytes
		}
	}
	cr := &countingReader{ctx: ctx, r: r, left: log.MaxBytes, limited: log.Regular || log.MaxBytes > 0}
	p := Parser{Since: opt.Since}
	err := ReadText(cr, opt.Text, p.Feed)
	log.Bytes = cr.n
	switch {
	case err != nil && ctx.Err() != nil:
		log.Interrupted = true
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", path, cleanPathErr(err, path))
	case cr.limited && cr.left == 0:
		// Stopped at the bound: is there more?
		var b [1]byte
		n, _ := r.Read(b[:])
		log.Truncated = n > 0
	}
	log.Result = p.Result()
	return log, nil
}

// openLog opens a log copy. Opening a FIFO waits for a writer: Ctrl-C
// must still end that wait.
func openLog(ctx context.Context, path string) (*os.File, error) {
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		return o.f, o.err
	case <-ctx.Done():
		// The goroutine stays blocked in open until a writer comes or
		// the process exits; close what it opens then.
		go func() {
			if o := <-ch; o.f != nil {
				o.f.Close()
			}
		}()
		return nil, fmt.Errorf("opening %s: interrupted while waiting for a writer: %w", path, ctx.Err())
	}
}

// countingReader counts the bytes read, stops at a bound when limited,
// and stops when the context ends.
type countingReader struct {
	ctx     context.Context
	r       io.Reader
	n       int64
	left    int64
	limited bool
}

func (c *countingReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.limited {
		if c.left <= 0 {
			return 0, io.EOF
		}
		if int64(len(b)) > c.left {
			b = b[:c.left]
		}
	}
	n, err := c.r.Read(b)
	c.n += int64(n)
	c.left -= int64(n)
	if err != nil && c.ctx.Err() != nil {
		err = c.ctx.Err()
	}
	return n, err
}
