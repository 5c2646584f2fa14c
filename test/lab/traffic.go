package main

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// trafficStats is what one traffic run did.
type trafficStats struct {
	Bursts, Connected, DialErrors int64
}

// traffic opens bursts of conns TCP connections over loopback and holds
// them until the burst is complete, then closes them, for d. Every
// accepted connection is a child socket that tcp_v4_rcv → tcp_check_req
// → sk_clone_lock allocates in NET_RX softirq (loopback's backlog is
// processed there), and each SYN-ACK an skb allocated there too.
func traffic(d time.Duration, conns int) (trafficStats, error) {
	var st trafficStats
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return st, err
	}
	defer ln.Close()
	var mu sync.Mutex
	var accepted []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()
	addr := ln.Addr().String()
	payload := make([]byte, 2048)
	var connected, dialErr atomic.Int64
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		st.Bursts++
		var wg sync.WaitGroup
		out := make([]net.Conn, conns)
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
				if err != nil {
					dialErr.Add(1)
					return
				}
				connected.Add(1)
				c.Write(payload)
				out[i] = c
			}()
		}
		wg.Wait()
		for _, c := range out {
			if c != nil {
				c.Close()
			}
		}
		mu.Lock()
		for _, c := range accepted {
			c.Close()
		}
		accepted = accepted[:0]
		mu.Unlock()
	}
	st.Connected, st.DialErrors = connected.Load(), dialErr.Load()
	return st, nil
}
