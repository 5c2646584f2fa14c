package kmsg

import "strings"

// What the frames of a call trace mean to Summarize: the activities a
// frame names, the system call entry points, and the allocator and
// plumbing frames that say nothing about who asked. New kernels rename
// functions; this file is the list to extend.

// activity is a frame that names what the kernel was doing.
type activity struct {
	name    string
	prefix  bool // name is a prefix
	what    string
	context string // the context this frame implies, if any
}

// activities are matched from the allocating frame outward; the first
// (innermost) match wins, so "network transmit" inside a sendmsg system
// call is reported as such.
var activities = []activity{
	{name: "tcp_v4_rcv", what: "network receive"},
	{name: "tcp_v6_rcv", what: "network receive"},
	{name: "udp_rcv", what: "network receive"},
	{name: "udpv6_rcv", what: "network receive"},
	{name: "__udp4_lib_rcv", what: "network receive"},
	{name: "icmp_rcv", what: "network receive"},
	{name: "arp_rcv", what: "network receive"},
	{name: "ip_rcv", what: "network receive"},
	{name: "ipv6_rcv", what: "network receive"},
	{name: "__netif_receive_skb", prefix: true, what: "network receive"},
	{name: "netif_receive_skb", prefix: true, what: "network receive"},
	{name: "napi_gro_receive", what: "network receive"},
	{name: "napi_gro_frags", what: "network receive"},
	{name: "__napi_poll", what: "network receive"},
	{name: "net_rx_action", what: "network receive", context: "softirq"},
	{name: "tcp_sendmsg", prefix: true, what: "network transmit"},
	{name: "tcp_write_xmit", what: "network transmit"},
	{name: "__tcp_transmit_skb", what: "network transmit"},
	{name: "tcp_transmit_skb", what: "network transmit"},
	{name: "udp_sendmsg", what: "network transmit"},
	{name: "ip_queue_xmit", what: "network transmit"},
	{name: "__dev_queue_xmit", what: "network transmit"},
	{name: "dev_queue_xmit", what: "network transmit"},
	{name: "dev_hard_start_xmit", what: "network transmit"},
	{name: "net_tx_action", what: "network transmit", context: "softirq"},
	{name: "tcp_tasklet_func", what: "network transmit"},
	{name: "blk_mq_", prefix: true, what: "block I/O"},
	{name: "submit_bio", prefix: true, what: "block I/O"},
	{name: "generic_make_request", what: "block I/O"},
	{name: "scsi_queue_rq", what: "block I/O"},
	{name: "nvme_queue_rq", what: "block I/O"},
	{name: "do_huge_pmd_anonymous_page", what: "THP page fault"},
	{name: "handle_mm_fault", what: "page fault"},
	{name: "__handle_mm_fault", what: "page fault"},
	{name: "do_page_fault", what: "page fault"},
	{name: "exc_page_fault", what: "page fault"},
	{name: "do_user_addr_fault", what: "page fault"},
	{name: "khugepaged", what: "khugepaged", context: "kernel thread"},
	{name: "kswapd", what: "kswapd", context: "kernel thread"},
	{name: "kcompactd", what: "kcompactd", context: "kernel thread"},
	{name: "load_module", what: "module load"},
	{name: "copy_process", what: "fork"},
	{name: "bprm_execve", what: "exec"},
	{name: "do_execve", prefix: true, what: "exec"},
	{name: "call_timer_fn", what: "timer", context: "softirq"},
	{name: "tasklet_action", prefix: true, what: "tasklet", context: "softirq"},
	{name: "rcu_core", what: "RCU callback", context: "softirq"},
	{name: "rcu_do_batch", what: "RCU callback", context: "softirq"},
	{name: "process_one_work", what: "workqueue", context: "kernel thread"},
}

// syscallPrefixes name system call entry points on x86-64, arm64 and
// ia32 since 4.17, and before ("sys_fsetxattr", "SyS_…").
var syscallPrefixes = []string{"__x64_sys_", "__arm64_sys_", "__ia32_sys_", "__ia32_compat_sys_", "__se_sys_", "__do_sys_", "__s390x_sys_", "sys_", "SyS_", "compat_sys_"}

// bareSyscallPrefixes is the index of the first prefix of the old kind.
const bareSyscallPrefixes = 7

// allocatorFrame reports frames of the allocators and their thin
// wrappers: true of every caller, they say nothing about who asked.
func allocatorFrame(fn string) bool {
	fn = strings.TrimSuffix(fn, "_noprof")
	if allocatorNames[fn] {
		return true
	}
	for _, p := range allocatorPrefixes {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

var allocatorNames = map[string]bool{
	"dump_stack": true, "dump_stack_lvl": true, "show_stack": true, "__dump_stack": true, "dump_backtrace": true,
	"warn_alloc": true, "warn_alloc_failed": true, "warn_alloc_show_mem": true,
	"kmem_getpages": true, "fallback_alloc": true, "cache_grow": true, "cache_grow_begin": true,
	"cache_alloc_refill": true, "new_slab": true, "allocate_slab": true, "alloc_slab_page": true,
	"sk_prot_alloc": true, "kmalloc_reserve": true, "get_zeroed_page": true, "__get_free_pages": true,
	"alloc_page_interleave": true, "skb_page_frag_refill": true, "sk_page_frag_refill": true,
	"vm_area_alloc_pages": true, "__vmalloc_area_node": true, "alloc_vmap_area": true,
	"alloc_skb_with_frags": true, "kvmalloc_node": true, "kvzalloc": true, "kzalloc": true, "kcalloc": true,
	"new_slab_objects": true, "refill_obj_stock": true, "obj_cgroup_charge": true,
	"__memcg_kmem_charge_page": true, "__memcg_slab_post_alloc_hook": true,
	"memcg_slab_post_alloc_hook": true, "try_charge_memcg": true,
	// skb copies allocate for their caller.
	"skb_copy": true, "skb_copy_expand": true, "skb_clone": true, "pskb_expand_head": true,
	"__pskb_pull_tail": true, "skb_realloc_headroom": true, "pskb_copy": true, "__pskb_copy_fclone": true,
}

var allocatorPrefixes = []string{
	"__alloc_pages", "alloc_pages", "__folio_alloc", "folio_alloc", "__alloc_frozen_pages", "alloc_frozen_pages",
	"kmem_cache_alloc", "__kmem_cache_alloc", "____cache_alloc", "__cache_alloc", "slab_alloc", "__slab_alloc", "___slab_alloc",
	"kmalloc", "__kmalloc", "___kmalloc", "__do_kmalloc", "kvmalloc", "__kvmalloc", "kvzalloc",
	"vmalloc", "__vmalloc", "vzalloc", "__alloc_skb", "alloc_skb", "__netdev_alloc_skb", "__napi_alloc_skb",
	"netdev_alloc_skb", "dev_alloc_skb", "page_frag_alloc", "__page_frag_alloc", "__page_frag_cache", "alloc_pages_exact",
	"__pfx_", "dump_stack", "memcg_", "mem_cgroup_charge", "__mem_cgroup_charge",
}

// plumbingFrame reports frames of interrupt, system call and idle entry:
// they set the context but are not what the kernel was doing.
func plumbingFrame(fn string) bool {
	if plumbingNames[fn] {
		return true
	}
	for _, p := range []string{"asm_", "sysvec_", "irq_exit", "__irq_exit", "entry_SYSCALL", "ret_from_fork", "secondary_startup", "x86_64_start", "default_idle", "cpu_idle", "do_idle", "cpuidle_", "handle_irq", "handle_edge_irq", "handle_fasteoi_irq", "__handle_irq", "common_interrupt", "__sysvec_", "el0_", "el1_", "gic_handle_irq"} {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

var plumbingNames = map[string]bool{
	"__do_softirq": true, "handle_softirqs": true, "do_softirq": true, "call_softirq": true, "do_softirq_own_stack": true,
	"run_ksoftirqd": true, "smpboot_thread_fn": true, "__local_bh_enable_ip": true, "local_bh_enable": true,
	"do_IRQ": true, "ret_from_intr": true, "handle_IRQ_event": true, "__common_interrupt": true,
	"do_syscall_64": true, "x64_sys_call": true, "system_call_fastpath": true, "system_call": true, "do_syscall_x64": true,
	"invoke_syscall": true, "el0_svc_common": true, "do_el0_svc": true,
	"kthread": true, "worker_thread": true, "native_safe_halt": true, "arch_cpu_idle": true, "cpu_startup_entry": true,
	"start_secondary": true, "rest_init": true, "start_kernel": true, "mwait_idle": true, "intel_idle": true,
	"acpi_idle_enter": true, "poll_idle": true, "pv_native_safe_halt": true,
}

// softirqFrames show that a frame below them ran in softirq context.
var softirqFrames = map[string]bool{
	"__do_softirq": true, "handle_softirqs": true, "do_softirq": true, "call_softirq": true,
	"run_ksoftirqd": true, "do_softirq_own_stack": true, "net_rx_action": true, "net_tx_action": true,
}

// matchActivity returns the activity fn names, if any.
func matchActivity(fn string) (activity, bool) {
	for _, a := range activities {
		if fn == a.name || (a.prefix && strings.HasPrefix(fn, a.name)) {
			return a, true
		}
	}
	return activity{}, false
}
