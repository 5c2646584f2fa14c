package kmsg

import "testing"

func TestFoldComm(t *testing.T) {
	for in, want := range map[string]string{
		"swapper/0": "swapper/*", "kworker/u48:2": "kworker/*", "kworker/0:1H": "kworker/*",
		"ksoftirqd/12": "ksoftirqd/*", "kswapd0": "kswapd*", "postgres": "postgres", "irq/45-eth0": "irq/45-eth0",
		"swapper": "swapper",
	} {
		if got := FoldComm(in); got != want {
			t.Errorf("FoldComm(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSummarizeNoTrace(t *testing.T) {
	if got := Summarize(nil, "x").String(); got != "no call trace" {
		t.Errorf("got %q", got)
	}
	// A workqueue names its work function.
	fs := []Frame{
		{Func: "dump_stack"}, {Func: "warn_alloc"}, {Func: "__alloc_pages"}, {Func: "kmalloc_large"},
		{Func: "bpf_map_area_alloc"}, {Func: "htab_map_alloc"}, {Func: "map_update_work"},
		{Func: "process_one_work"}, {Func: "worker_thread"}, {Func: "kthread"}, {Func: "ret_from_fork"},
	}
	p := Summarize(fs, "kworker/3:1")
	if got := p.String(); got != "workqueue map_update_work: htab_map_alloc → bpf_map_area_alloc" || p.Context != "kernel thread" {
		t.Errorf("got %q (%s)", got, p.Context)
	}
}
