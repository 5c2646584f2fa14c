package provoke

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// kmsgReader reads kernel log records written after it was opened. Reading
// /dev/kmsg is non-destructive: unlike `dmesg -c` it clears nothing, and
// every reader has its own position.
type kmsgReader struct {
	fd  int
	buf []byte
}

func openKmsg() (*kmsgReader, error) {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/kmsg: %w", err)
	}
	// SEEK_END on /dev/kmsg moves to the next record to be written.
	if _, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("seeking /dev/kmsg: %w", err)
	}
	return &kmsgReader{fd: fd, buf: make([]byte, 8192)}, nil
}

// messages returns the text of the records logged since the last call.
func (k *kmsgReader) messages() ([]string, error) {
	var msgs []string
	for {
		// One read returns one record: "prio,seq,usec,flags;text\n KEY=v\n".
		n, err := unix.Read(k.fd, k.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return msgs, nil
		case errors.Is(err, unix.EPIPE):
			continue // records were overwritten before we read them
		case err != nil:
			return msgs, fmt.Errorf("reading /dev/kmsg: %w", err)
		}
		rec := string(k.buf[:n])
		_, text, ok := strings.Cut(rec, ";")
		if !ok {
			continue
		}
		text, _, _ = strings.Cut(text, "\n")
		msgs = append(msgs, text)
	}
}

func (k *kmsgReader) close() { unix.Close(k.fd) }
