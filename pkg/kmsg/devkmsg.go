package kmsg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DevKmsg is where the running kernel's log is read from.
const DevKmsg = "/dev/kmsg"

// recordBuf fits any /dev/kmsg record: the kernel returns EINVAL when the
// buffer is smaller than the next record (up to CONSOLE_EXT_LOG_MAX, 8 KiB,
// with the dictionary lines).
const recordBuf = 16 << 10

// maxLiveRecords bounds one read of /dev/kmsg, so a warning flood that
// keeps adding records while we read cannot keep us reading forever.
const maxLiveRecords = 4 << 20

// ReadDevKmsg reads every record the kernel still holds from path
// (normally DevKmsg) and passes each line to fn. The file is opened
// read-only and non-blocking: reading starts at the oldest record and
// stops at the newest (EAGAIN) without waiting, and it consumes nothing
// (every open of /dev/kmsg has its own position). Records overwritten
// while reading (EPIPE) are skipped. boot converts the kernel's time since
// boot into wall time; a zero boot leaves Wall unset.
func ReadDevKmsg(ctx context.Context, path string, boot time.Time, fn func(Record)) error {
	// A raw descriptor, not an *os.File: File.Fd would switch it back to
	// blocking mode, and the last read would then wait for the next
	// kernel message instead of returning EAGAIN.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	err = readRecords(ctx, func(b []byte) (int, error) { return unix.Read(fd, b) }, boot, fn)
	if errno, ok := err.(syscall.Errno); ok {
		return &os.PathError{Op: "read", Path: path, Err: errno}
	}
	return err
}

// readRecords is ReadDevKmsg's loop over read calls that each return one
// record, as /dev/kmsg's do.
func readRecords(ctx context.Context, read func([]byte) (int, error), boot time.Time, fn func(Record)) error {
	buf := make([]byte, recordBuf)
	// The last line is held back until the next record shows whether it
	// continues it.
	var held *Record
	flush := func() {
		if held != nil {
			fn(*held)
			held = nil
		}
	}
	defer flush()
	for n := 0; n < maxLiveRecords; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		m, err := read(buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return nil
		case err == unix.EPIPE:
			continue // the ring wrapped under us; the read position moved on
		case err != nil:
			return err
		case m <= 0:
			return nil
		}
		lines, ok := parseKmsgRecord(buf[:m], boot)
		if !ok {
			continue
		}
		// Old kernels (3.5-4.9) store KERN_CONT fragments as records of
		// their own, flagged '+': glue them to the line they continue.
		if lines[0].cont && held != nil {
			held.Text += lines[0].Text
			lines = lines[1:]
		}
		for _, l := range lines {
			flush()
			r := l.Record
			held = &r
		}
	}
	return nil
}

// kmsgLine is a parsed record line and whether it continues the previous
// record ('+' flag).
type kmsgLine struct {
	Record
	cont bool
}

// parseKmsgRecord parses one /dev/kmsg record:
//
//	prio,seq,usec,flags[,more];message\n
//	 KEY=value\n   (dictionary lines, skipped)
//
// The message is unescaped (\xNN) and split at embedded newlines.
func parseKmsgRecord(b []byte, boot time.Time) ([]kmsgLine, bool) {
	head, rest, ok := bytes.Cut(b, []byte{';'})
	if !ok {
		return nil, false
	}
	msg, _, _ := bytes.Cut(rest, []byte{'\n'}) // dictionary lines follow
	h, ok := parseKmsgPrefix(string(head))
	if !ok {
		return nil, false
	}
	h.Stamp = stampFromUptime(h.Stamp.Uptime, boot)
	text := unescapeKmsg(string(msg))
	lines := strings.Split(text, "\n")
	out := make([]kmsgLine, 0, len(lines))
	for _, l := range lines {
		r := h.Record
		r.Text = strings.TrimRight(l, "\r")
		out = append(out, kmsgLine{Record: r, cont: h.cont})
	}
	return out, true
}

// parseKmsgPrefix parses "prio,seq,usec,flags[,caller=T12]" (the part
// before ';').
func parseKmsgPrefix(head string) (kmsgLine, bool) {
	f := strings.Split(head, ",")
	if len(f) < 4 {
		return kmsgLine{}, false
	}
	prio, err1 := strconv.ParseUint(f[0], 10, 32)
	seq, err2 := strconv.ParseUint(f[1], 10, 64)
	usec, err3 := strconv.ParseUint(f[2], 10, 63)
	if err1 != nil || err2 != nil || err3 != nil || usec > uint64(maxUptime/time.Microsecond) {
		return kmsgLine{}, false
	}
	var l kmsgLine
	l.Seq = seq
	l.Level = int(prio & 7)
	l.Stamp = Stamp{Uptime: time.Duration(usec) * time.Microsecond, HasUptime: true}
	l.cont = strings.Contains(f[3], "+")
	for _, extra := range f[4:] {
		if c, ok := strings.CutPrefix(extra, "caller="); ok {
			l.Caller = c
		}
	}
	return l, true
}

// maxUptime keeps absurd timestamps of corrupt input from overflowing
// time.Duration arithmetic: 100 years.
const maxUptime = 100 * 365 * 24 * time.Hour

func stampFromUptime(up time.Duration, boot time.Time) Stamp {
	s := Stamp{Uptime: up, HasUptime: true}
	if !boot.IsZero() {
		s.Wall = boot.Add(up)
	}
	return s
}

// unescapeKmsg undoes /dev/kmsg's escaping: the kernel writes every byte
// below 0x20 (newlines of multi-line records included), from 0x7f up, and
// the backslash itself as \xNN.
func unescapeKmsg(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// BootTime estimates when the running kernel booted, as dmesg -T does:
// now minus CLOCK_BOOTTIME. printk times do not advance during suspend,
// so after a suspend the wall times of earlier lines come out late by the
// time spent suspended (dmesg has the same caveat).
func BootTime() (time.Time, error) {
	var ts unix.Timespec
	now := time.Now()
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, fmt.Errorf("reading CLOCK_BOOTTIME: %w", err)
	}
	return now.Add(-time.Duration(ts.Nano())), nil
}

// IsPermission reports whether err means the log is closed to this user
// (kernel.dmesg_restrict=1 without CAP_SYSLOG).
func IsPermission(err error) bool {
	return errors.Is(err, os.ErrPermission)
}
