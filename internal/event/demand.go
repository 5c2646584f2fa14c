package event

// AtomicDemand is the pages allocated by requests that cannot sleep (no
// __GFP_DIRECT_RECLAIM), successes and failures, counted in the kernel
// since the session started. Such requests live on the free memory above
// the min watermark: vm.min_free_kbytes must cover one burst of them.
type AtomicDemand struct {
	// HighPages were asked with __GFP_HIGH (GFP_ATOMIC): they may go under
	// the min watermark, to 3/8 of it.
	HighPages uint64 `json:"high_pages"`
	// OtherPages were asked without it (GFP_NOWAIT, THP faults without
	// direct reclaim, the first try of a network page fragment): they stop
	// at min.
	OtherPages uint64 `json:"other_pages"`
}

// Total is all atomic pages.
func (d AtomicDemand) Total() uint64 { return d.HighPages + d.OtherPages }

// Sub is the demand between two readings.
func (d AtomicDemand) Sub(earlier AtomicDemand) AtomicDemand {
	return AtomicDemand{HighPages: d.HighPages - earlier.HighPages, OtherPages: d.OtherPages - earlier.OtherPages}
}

// AtomicSource is who made atomic demand, from a sample of it: one atomic
// allocation in Every per CPU is attributed. In softirq and hardirq
// context the task is only the one interrupted; Context says which.
type AtomicSource struct {
	Task
	Context Context `json:"context"`
	High    bool    `json:"gfp_high"`
	Samples uint64  `json:"samples"`
	// SampledPages are the pages of the sampled allocations;
	// EstimatedPages scales them by the sampling rate.
	SampledPages   uint64 `json:"sampled_pages"`
	EstimatedPages uint64 `json:"estimated_pages"`
}

// DemandSource is a session that counts atomic demand (the loader's, when
// the alloc signal is attached). The outputs find it by asserting their
// Source to it, so a session without it (a fake) needs nothing.
type DemandSource interface {
	// AtomicDemandCounted says why nothing is counted, nil when it is.
	AtomicDemandCounted() error
	// AtomicDemand is the cumulative demand since the session started.
	AtomicDemand() (AtomicDemand, error)
	// AtomicSources is who made it, from a sample, most pages first.
	AtomicSources() ([]AtomicSource, error)
}
