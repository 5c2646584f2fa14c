package event

import "time"

// AllocAggregate is the exact in-kernel count of allocation failures for
// one (process, order, GFP flags, context, kernel stack).
type AllocAggregate struct {
	Task
	Context         Context   `json:"context"`
	Order           uint32    `json:"order"`
	GFPFlags        Hex       `json:"gfp_flags"`
	GFP             string    `json:"gfp"`
	GFPClass        string    `json:"gfp_class"`
	Atomic          bool      `json:"atomic"`
	Migratetype     int32     `json:"migratetype"`
	MigratetypeName string    `json:"migratetype_name,omitempty"`
	StackID         int32     `json:"stack_id"`
	Stack           []string  `json:"stack,omitempty"`
	Count           uint64    `json:"count"`
	FirstSeen       time.Time `json:"first_seen"`
	LastSeen        time.Time `json:"last_seen"`
	// THPFallback: see AllocFailure.
	THPFallback bool `json:"thp_fallback,omitempty"`
}

// ExtfragAggregate is the exact in-kernel count of fallbacks for one
// (process, alloc order, fallback order, alloc and fallback migratetype).
type ExtfragAggregate struct {
	Task
	AllocOrder              int32     `json:"alloc_order"`
	FallbackOrder           int32     `json:"fallback_order"`
	AllocMigratetype        int32     `json:"alloc_migratetype"`
	AllocMigratetypeName    string    `json:"alloc_migratetype_name"`
	FallbackMigratetype     int32     `json:"fallback_migratetype"`
	FallbackMigratetypeName string    `json:"fallback_migratetype_name"`
	Count                   uint64    `json:"count"`
	Fragmenting             uint64    `json:"fragmenting"`
	ChangeOwnership         uint64    `json:"change_ownership"`
	FirstSeen               time.Time `json:"first_seen"`
	LastSeen                time.Time `json:"last_seen"`
}

// Stats are one signal's counters, summed over CPUs.
type Stats struct {
	// Seen counts events that passed the filters.
	Seen uint64 `json:"seen"`
	// Lost counts events dropped because the ring buffer was full.
	Lost uint64 `json:"lost"`
	// Sampled counts events not sent by design; they are in the aggregates.
	Sampled uint64 `json:"sampled"`
	// MapFull counts events that found an aggregation or pairing map full.
	MapFull uint64 `json:"map_full"`
}
