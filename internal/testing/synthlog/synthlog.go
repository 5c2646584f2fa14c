// Package synthlog writes synthetic kernel logs full of allocation
// failure reports, generated while they are read: the input of the kernel
// log reader's memory benchmark (a million reports is hundreds of
// megabytes, too much to keep in the repository).
package synthlog

import (
	"fmt"
	"io"
	"time"
)

// Options shape the log.
type Options struct {
	// Reports is how many failure reports the log holds.
	Reports int
	// Distinct gives every report a task of its own ("w0000017"), so no
	// two reports group together; otherwise every report is the same
	// swapper/N atomic failure in network receive, as in a flood.
	Distinct bool
	// MemInfo appends the Mem-Info block (zones and free blocks) to every
	// report, as the kernel does when its rate limit lets it.
	MemInfo bool
}

// Reader generates the log as dmesg prints it, one report at a time.
type Reader struct {
	opt  Options
	n    int
	up   time.Duration
	buf  []byte
	off  int
	done bool
}

// New returns a reader of the log opt describes.
func New(opt Options) *Reader {
	return &Reader{opt: opt, up: 1000 * time.Second}
}

func (r *Reader) Read(p []byte) (int, error) {
	for r.off == len(r.buf) {
		if r.n >= r.opt.Reports {
			return 0, io.EOF
		}
		r.buf, r.off = r.report(r.buf[:0]), 0
		r.n++
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}

// frames is a softirq receive path as 6.x prints it.
var frames = []string{
	" <IRQ>",
	" dump_stack_lvl+0x57/0x80",
	" warn_alloc+0x147/0x170",
	" __alloc_pages_slowpath.constprop.0+0xc4e/0xd60",
	" __alloc_pages_noprof+0x2f9/0x320",
	" __kmalloc_large_node_noprof+0x6e/0x130",
	" __kmalloc_node_track_caller_noprof+0x2b8/0x3d0",
	" kmalloc_reserve+0x62/0xf0",
	" pskb_expand_head+0x92/0x410",
	" skb_clone+0x89/0xc0",
	" tcp_v4_rcv+0xd3c/0xe60",
	" ip_protocol_deliver_rcu+0x32/0x180",
	" ip_local_deliver_finish+0x77/0xa0",
	" __netif_receive_skb_one_core+0x89/0xa0",
	" process_backlog+0x87/0x130",
	" __napi_poll+0x2b/0x1d0",
	" net_rx_action+0x333/0x3f0",
	" handle_softirqs+0xd8/0x2c0",
	" __irq_exit_rcu+0x6a/0x90",
	" common_interrupt+0x85/0xa0",
	" </IRQ>",
	" <TASK>",
	" asm_common_interrupt+0x26/0x40",
	" default_idle+0xf/0x20",
	" do_idle+0x1f2/0x240",
	" cpu_startup_entry+0x29/0x30",
	" </TASK>",
}

var memInfo = []string{
	"Mem-Info:",
	"active_anon:381 inactive_anon:1105 isolated_anon:0",
	"Node 0 Normal free:36012kB boost:0kB min:36596kB low:45744kB high:54892kB reserved_highatomic:0KB",
	"lowmem_reserve[]: 0 0 0 0 0",
	"Node 0 Normal: 4908*4kB (UME) 0*8kB 0*16kB 0*32kB 0*64kB 0*128kB 0*256kB 0*512kB 0*1024kB 0*2048kB 0*4096kB = 19632kB",
	"526869 total pagecache pages",
	"Free swap  = 0kB",
}

func (r *Reader) report(b []byte) []byte {
	stamp := func() {
		r.up += 13 * time.Microsecond
		b = fmt.Appendf(b, "[%5d.%06d] ", r.up/time.Second, r.up%time.Second/time.Microsecond)
	}
	cpu := r.n % 4
	comm, pid := fmt.Sprintf("swapper/%d", cpu), 0
	if r.opt.Distinct {
		comm, pid = fmt.Sprintf("w%07d", r.n), 1000+r.n
	}
	stamp()
	b = fmt.Appendf(b, "%s: page allocation failure: order:1, mode:0x820(GFP_ATOMIC), nodemask=(null),cpuset=/,mems_allowed=0\n", comm)
	stamp()
	b = fmt.Appendf(b, "CPU: %d UID: 0 PID: %d Comm: %s Not tainted 6.18.44 #1 PREEMPT(none)\n", cpu, pid, comm)
	stamp()
	b = append(b, "Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.3 04/01/2014\n"...)
	stamp()
	b = append(b, "Call Trace:\n"...)
	for _, f := range frames {
		stamp()
		b = append(b, f...)
		b = append(b, '\n')
	}
	if r.opt.MemInfo {
		for _, l := range memInfo {
			stamp()
			b = append(b, l...)
			b = append(b, '\n')
		}
	}
	// Another line of the log between reports.
	stamp()
	b = append(b, "eth0: link up\n"...)
	r.up += time.Second
	return b
}
