package doctor

import (
	"fmt"
	"strings"
)

func checkTHP(in *Inputs) Finding {
	f := Finding{ID: "thp", Title: "Transparent huge pages"}
	t := in.THP
	if !t.Present {
		f.Summary = "not in this kernel"
		return f
	}
	f.add("enabled", "%s", orWord(t.Enabled, "?"))
	f.add("defrag", "%s", orWord(t.Defrag, "?"))
	if t.KhugepagedDefrag != "" {
		f.add("khugepaged/defrag", "%s", t.KhugepagedDefrag)
	}
	if v := in.Meminfo.AnonHugePagesKB; v > 0 {
		f.add("AnonHugePages", "%s", kb(v))
	}
	for _, c := range []string{"thp_fault_fallback", "thp_collapse_alloc_failed"} {
		if v, ok := in.Snap.Vmstat[c]; ok {
			f.add(c, "%d since boot", v)
		}
	}
	var bad []string
	if t.Enabled == "always" {
		bad = append(bad, "enabled=always")
		f.Fix = append(f.Fix, "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled")
	}
	if t.Defrag == "always" {
		bad = append(bad, "defrag=always")
		f.Fix = append(f.Fix, "echo defer+madvise > /sys/kernel/mm/transparent_hugepage/defrag")
	}
	if len(bad) == 0 {
		f.Summary = fmt.Sprintf("enabled=%s, defrag=%s: only programs that ask (madvise) get them", orWord(t.Enabled, "?"), orWord(t.Defrag, "?"))
		if t.Enabled == "never" {
			f.Summary = "disabled"
		}
		return f
	}
	f.Severity = Warn
	f.Summary = strings.Join(bad, ", ") + ": every anonymous mapping of a process gets huge pages"
	if t.Enabled != "always" {
		f.Summary = strings.Join(bad, ", ") + ": page faults of madvised regions compact memory synchronously"
	}
	f.Why = "THP for all memory makes page faults compact memory in the allocating task (defrag=always) and khugepaged rewrite address spaces in the background: latency spikes and memory bloat that database vendors (Oracle, MongoDB, Redis) tell users to avoid; hugetlbfs pages for the shared area do not have these costs."
	f.Fix = append(f.Fix, "add transparent_hugepage=madvise to the kernel command line to keep it across reboots")
	return f
}
