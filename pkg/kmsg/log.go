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
	Result
}

// LiveOptions say where to find the running kernel's log.
type LiveOptions struct {
	DevKmsg string // DevKmsg when empty
	// Dmesg is the command run when DevKmsg cannot be read ("dmesg" when
	// empty; "-" to not run any).
	Dmesg string
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
	var p Parser
	err := ReadDevKmsg(ctx, dev, boot, p.Feed)
	if err == nil {
		return &Log{Source: dev, Live: true, Boot: boot, Result: p.Result()}, nil
	}
	tried := []string{fmt.Sprintf("%s: %v", dev, cleanPathErr(err, dev))}
	errs := []error{fmt.Errorf("reading %s: %w", dev, cleanPathErr(err, dev))}
	cmd := opt.Dmesg
	if cmd == "" {
		cmd = "dmesg"
	}
	if cmd != "-" {
		var q Parser
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

// ReadFile reads a copy of a kernel log ("-" reads stdin). Its times
// since boot are not turned into wall times: the copy may come from
// another boot or host. A zero opt.Now dates syslog lines by the file's
// modification time.
func ReadFile(ctx context.Context, path string, stdin io.Reader, opt TextOptions) (*Log, error) {
	var r io.Reader
	if path == "-" {
		r = stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			if st.IsDir() {
				return nil, fmt.Errorf("%s is a directory", path)
			}
			if opt.Now.IsZero() {
				opt.Now = st.ModTime()
			}
		}
		r = f
	}
	var p Parser
	if err := ReadText(ctxReader{ctx, r}, opt, p.Feed); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, cleanPathErr(err, path))
	}
	return &Log{Source: path, Result: p.Result()}, nil
}

// ctxReader stops a long read when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
