package bpfgen

import "github.com/cilium/ebpf"

// EmptyObjects are the floor's programs, loaded by LoadEmptyObjects.
type EmptyObjects = emptyObjects

// LoadEmptyObjects loads the empty programs (nothing attached yet).
func LoadEmptyObjects(objs *EmptyObjects, opts *ebpf.CollectionOptions) error {
	return loadEmptyObjects(objs, opts)
}

// StallEmptySpec is the collection of empty programs on the stall
// families' tracepoints.
func StallEmptySpec() (*ebpf.CollectionSpec, error) { return loadStallempty() }

// BurstSpec is the burst injector's collection, to be loaded with a
// running memtrace's maps as replacements.
func BurstSpec() (*ebpf.CollectionSpec, error) { return loadBurst() }
