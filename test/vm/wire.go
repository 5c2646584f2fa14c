package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/memtrace/memtrace/test/vm/internal/cpio"
)

// The lab's wire (test/lab/wire.go): a virtio-net device on qemu's user
// network, a host port forwarded to the guest's port 7070, and dialers
// on the host that connect to it for the whole run, so that connections
// reach the guest through a device's receive softirq (on an idle vCPU:
// the idle task interrupted), as the seed's did.
const (
	guestWirePort = 7070
	// wireDialers connect at once; wireHold connections are held, then
	// all closed (a burst), as over loopback: enough that the guest's
	// TCP slab must grow while they arrive.
	wireDialers = 16
	wireHold    = 1000
	// wirePayload is what each connection writes once greeted.
	wirePayload = 512
)

// wireModuleMembers are the virtio-net modules of a Debian kernel
// package (test/lab/wire.go loads them in order).
var wireModuleMembers = []string{
	"./lib/modules/*/kernel/drivers/virtio/*",
	"./lib/modules/*/kernel/drivers/net/virtio_net.ko",
	"./lib/modules/*/kernel/drivers/net/net_failover.ko",
	"./lib/modules/*/kernel/net/core/failover.ko",
}

// wireModules unpacks the device's modules from the kernel package and
// returns the tree holding lib/modules/RELEASE/...
func wireModules(cache, deb string) (string, error) {
	dir := filepath.Join(cache, "unpacked", strings.TrimSuffix(filepath.Base(deb), ".deb")+"-wire")
	if err := unpack(deb, dir, wireModuleMembers...); err != nil {
		return "", err
	}
	return dir, nil
}

// addTree copies every file under dir into the initramfs at the same
// relative path.
func addTree(cw *cpio.Writer, dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() || d.Name() == ".unpacked" {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		return cw.CopyFile(rel, path)
	})
}

// wireArgs are qemu's arguments for the device, forwarding host port to
// the guest's.
func wireArgs(m machine, port int) []string {
	dev := "virtio-net-pci"
	if m.arch == "arm64" {
		dev = "virtio-net-device"
	}
	return []string{
		"-netdev", fmt.Sprintf("user,id=wire,hostfwd=tcp:127.0.0.1:%d-:%d", port, guestWirePort),
		"-device", dev + ",netdev=wire",
	}
}

// freePort asks the kernel for a port nobody listens on; qemu binds it
// moments later.
func freePort() (int, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return strconv.Atoi(p)
}

// dialWire connects to port until ctx ends. A connection counts once the
// guest's greeting byte arrived (qemu accepts the host's connection
// before the guest does, and closes it when the guest does not listen);
// without one the dialer waits a second before trying again. It returns
// how many connections the guest greeted.
func dialWire(ctx context.Context, port int) int64 {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var greeted, open atomic.Int64
	var mu sync.Mutex
	var held []net.Conn
	closeAll := func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		held = held[:0]
		open.Store(0)
		mu.Unlock()
	}
	defer closeAll()
	payload := make([]byte, wirePayload)
	var wg sync.WaitGroup
	for range wireDialers {
		wg.Go(func() {
			for ctx.Err() == nil {
				if !dialOne(ctx, addr, payload, &held, &mu) {
					select {
					case <-ctx.Done():
					case <-time.After(time.Second):
					}
					continue
				}
				greeted.Add(1)
				if open.Add(1) >= wireHold {
					closeAll()
				}
			}
		})
	}
	wg.Wait()
	return greeted.Load()
}

// dialOne makes one connection, waits for the greeting, writes the
// payload and keeps the connection in held.
func dialOne(ctx context.Context, addr string, payload []byte, held *[]net.Conn, mu *sync.Mutex) bool {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp4", addr)
	if err != nil {
		return false
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return false
	}
	c.Write(payload)
	mu.Lock()
	*held = append(*held, c)
	mu.Unlock()
	return true
}

// startWire starts the dialers; stop ends them and says how many
// connections the guest greeted, on stderr.
func startWire(port int) (stop func() int64) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int64, 1)
	go func() { done <- dialWire(ctx, port) }()
	return func() int64 {
		cancel()
		n := <-done
		fmt.Fprintf(os.Stderr, "vm: the wire: the guest greeted %d connections dialed from the host\n", n)
		return n
	}
}
