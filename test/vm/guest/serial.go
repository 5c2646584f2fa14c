package main

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// results is the serial port the host reads, shared by the steps' output
// copiers; a line is written in one call so lines never interleave.
type results struct {
	mu sync.Mutex
	f  *os.File
}

// openResults opens the port in raw mode: no "\n" to "\r\n" translation,
// no echo, no flow control characters swallowed.
func openResults(path string) (*results, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the results port: %w", err)
	}
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading the results port's settings: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.B115200
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t); err != nil {
		f.Close()
		return nil, fmt.Errorf("setting the results port to raw: %w", err)
	}
	return &results{f: f}, nil
}

func (r *results) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.f.Write(p)
}

// Close waits until everything written has left the port.
func (r *results) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	unix.IoctlSetInt(int(r.f.Fd()), unix.TCSBRK, 1) // tcdrain
	return r.f.Close()
}
