package gfp

// THPFault reports whether flags is the mask of a transparent huge page
// fault or collapse: GFP_TRANSHUGE_LIGHT with, at most, the bits the THP
// paths add to it (vma_thp_gfp_mask: __GFP_DIRECT_RECLAIM, which makes
// GFP_TRANSHUGE, __GFP_KSWAPD_RECLAIM and __GFP_NORETRY by the defrag
// setting; the NUMA policy: __GFP_THISNODE). Failures of such requests are
// expected, the fault falls back to small pages, and callers test the
// order (the PMD order) themselves. Kernels before GFP_TRANSHUGE_LIGHT
// (4.8) are matched on GFP_TRANSHUGE less the bit that lets it sleep.
// shmem's huge pages use the mapping's mask and are not matched.
func (t *Table) THPFault(flags uint64) bool {
	base, ok := t.entry("GFP_TRANSHUGE_LIGHT")
	full, okFull := t.entry("GFP_TRANSHUGE")
	sleep, okSleep := t.sleepBit()
	if !ok {
		if !okFull || !okSleep {
			return false
		}
		base = full &^ sleep
	}
	if base == 0 || flags&base != base {
		return false
	}
	allowed := full &^ base
	if okSleep {
		allowed |= sleep
	}
	for _, name := range []string{"__GFP_KSWAPD_RECLAIM", "__GFP_NORETRY", "__GFP_THISNODE", "__GFP_NO_KSWAPD"} {
		if b, ok := t.Bit(name); ok {
			allowed |= b
		}
	}
	return flags&^base&^allowed == 0
}
