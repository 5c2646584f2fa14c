package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The wire: connections that reach the guest through a network device,
// as the seed's did, not through loopback. Over loopback the receive
// softirq runs when the sending process re-enables bottom halves, so the
// task a failure interrupted is always a process of the lab; packets from
// a device are received in the softirq that follows its interrupt, and on
// an idle CPU that interrupts the idle task: the seed's
// "swapper: page allocation failure". test/vm -lab gives the guest a
// virtio-net device on qemu's user network, with a host port forwarded to
// wirePort, and dials it from the host for the whole run.
const (
	wirePort = 7070
	wireAddr = "10.0.2.15/24" // qemu's user network gives the guest this address
)

// wireModules are the modules of a virtio-net device on Debian's 6.1, in
// the order they load (each needs some before it: their modinfo
// depends=); test/vm -lab puts
// them in the initramfs.
var wireModules = []string{
	"kernel/drivers/virtio/virtio_ring.ko",
	"kernel/drivers/virtio/virtio.ko",
	"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
	"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
	"kernel/drivers/virtio/virtio_pci.ko",
	"kernel/net/core/failover.ko",
	"kernel/drivers/net/net_failover.ko",
	"kernel/drivers/net/virtio_net.ko",
}

// wireUp loads the device's modules and gives its interface the user
// network's address. An error says why the lab runs without the wire.
func wireUp() (string, error) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return "", err
	}
	dir := filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:]))
	for _, m := range wireModules {
		f, err := os.Open(filepath.Join(dir, m))
		if err != nil {
			return "", fmt.Errorf("loading %s: %w", m, err)
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return "", fmt.Errorf("loading %s: %w", m, err)
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	var name string
	for _, i := range ifaces {
		if i.Flags&net.FlagLoopback == 0 {
			name = i.Name
			break
		}
	}
	if name == "" {
		return "", errors.New("no network interface after loading virtio_net: the VM has no virtio-net device")
	}
	for _, args := range [][]string{{"link", "set", name, "up"}, {"addr", "add", wireAddr, "dev", name}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return name, nil
}

// wireListener accepts the host's connections during the traffic runs:
// each is greeted with one byte (the host dials again only after a
// greeting, so it does not spin while nobody listens), read until the
// host closes it, then closed. Accepting makes the child socket in the
// receive softirq (sk_clone_lock), as over loopback.
type wireListener struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
	closed   bool // by close: a connection accepted meanwhile is closed at once
}

func listenWire() (*wireListener, error) {
	ln, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", wirePort))
	if err != nil {
		return nil, err
	}
	w := &wireListener{ln: ln, conns: map[net.Conn]bool{}}
	w.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// The host holds what it dialed: when free memory runs
			// low, as the loopback bursts stop, so does the wire.
			if free, err := meminfo("MemFree"); err == nil && free < lowFreeKB {
				c.Close()
				continue
			}
			w.mu.Lock()
			if w.closed {
				w.mu.Unlock()
				c.Close()
				continue
			}
			w.accepted.Add(1)
			w.conns[c] = true
			w.mu.Unlock()
			w.wg.Go(func() {
				c.Write([]byte{'m'})
				buf := make([]byte, 1024)
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				c.Close()
				w.mu.Lock()
				delete(w.conns, c)
				w.mu.Unlock()
			})
		}
	})
	return w, nil
}

// close stops accepting, closes what is open and returns how many
// connections were accepted.
func (w *wireListener) close() int64 {
	w.ln.Close()
	w.mu.Lock()
	w.closed = true
	for c := range w.conns {
		c.Close()
	}
	w.mu.Unlock()
	w.wg.Wait()
	return w.accepted.Load()
}
