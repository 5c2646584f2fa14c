package main

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// trafficStats is what one traffic run did.
type trafficStats struct {
	Bursts, Connected, DialErrors, PeakHeld int64
	LowMemory                               int64 // bursts ended by lowFreeKB
}

// lowFreeKB ends a burst early. At 64 MiB a run's first burst could end
// before the TCP slabs had outgrown the blocks left unfragmented, and the
// run made no failure; below it, the safety valve (frag.go) answers the
// reclaim stalls that come first.
const lowFreeKB = 32 << 10

// payloadBytes is what each connection writes (and the server never
// reads): enough for tcp_sendmsg's page-fragment refill, little enough
// that the receive queues do not eat the free memory the bursts need.
const payloadBytes = 512

// dialers is how many connections are being opened at once: more only
// overflows the listener's SYN queue on a single slow vCPU, and the
// retransmitted SYNs turn into dial timeouts.
const dialers = 32

// traffic opens TCP connections over loopback for d and holds them; once
// hold connections are open (a burst) it closes them all and starts
// again. Every accepted connection is a child socket that tcp_v4_rcv →
// tcp_check_req → sk_clone_lock allocates in NET_RX softirq (loopback's
// backlog is processed there), and every SYN-ACK an skb allocated there
// too. Holding them makes SLUB grow the TCP cache by new slabs, each
// first tried at the cache's preferred order (3 for TCP on 6.1) with
// __GFP_NORETRY|__GFP_NOWARN.
func traffic(d time.Duration, hold int) (trafficStats, error) {
	var st trafficStats
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return st, err
	}
	defer ln.Close()
	var mu sync.Mutex
	var held []net.Conn
	keep := func(c net.Conn) {
		mu.Lock()
		held = append(held, c)
		mu.Unlock()
	}
	closeAll := func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		held = held[:0]
		mu.Unlock()
	}
	defer closeAll()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			keep(c)
		}
	}()
	addr := ln.Addr().String()
	payload := make([]byte, payloadBytes)
	var connected, dialErr, open atomic.Int64
	end := time.Now().Add(d)
	// A burst also ends when free memory runs low: the held sockets and
	// their queued data are what the OOM killer would otherwise be
	// asked to free, and it picks the lab (the locked memory is its).
	var low atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			free, err := meminfo("MemFree")
			low.Store(err == nil && free < lowFreeKB)
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	for time.Now().Before(end) {
		st.Bursts++
		open.Store(0)
		var wg sync.WaitGroup
		for range dialers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for open.Add(1) <= int64(hold) && time.Now().Before(end) && !low.Load() {
					c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
					if err != nil {
						dialErr.Add(1)
						continue
					}
					connected.Add(1)
					c.Write(payload)
					keep(c)
				}
			}()
		}
		wg.Wait()
		if low.Load() {
			st.LowMemory++
		}
		mu.Lock()
		st.PeakHeld = max(st.PeakHeld, int64(len(held)))
		mu.Unlock()
		closeAll()
	}
	st.Connected, st.DialErrors = connected.Load(), dialErr.Load()
	return st, nil
}

// holder keeps connections open across the traffic runs.
type holder struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

// warmUp opens n loopback connections before memtrace starts and holds
// them until close. Their TCP slabs take the order-3 blocks left where
// memory was not fragmented (and those the kernel frees meanwhile), so
// the measured runs' slabs must grow on fragmented memory: without it,
// how many failures a run made depended on how many such blocks were
// left (12 to 8082 in runs with the same settings).
func warmUp(n int) (*holder, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h := &holder{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	for range dialers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				c, err := net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
				if err != nil {
					continue
				}
				h.mu.Lock()
				h.conns = append(h.conns, c)
				h.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return h, nil
}

// held is how many sockets (both sides) are held.
func (h *holder) held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

func (h *holder) close() {
	h.ln.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
	h.conns = nil
}
