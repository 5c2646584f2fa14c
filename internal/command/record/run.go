package record

import (
	"context"
	"errors"
	"os"
	"runtime/debug"

	"github.com/memtrace/memtrace/internal/decode/container"
	"github.com/memtrace/memtrace/internal/event"
)

// Run starts the probes with start, records until ctx is done, then
// writes any incident still recording, detaches the probes and frees
// them. onReady runs once the probes are attached.
func Run(ctx context.Context, opts Options, start func(event.Naming) (event.Source, error), onReady func(event.Source)) error {
	if start == nil {
		return errors.New("record: no start function for the probes")
	}
	if err := opts.Check(); err != nil {
		return err
	}
	sess, err := start(Naming())
	if err != nil {
		return err
	}
	defer sess.Close()
	// The session has dropped the parsed kernel BTF: a recorder that runs
	// for months returns it to the OS now rather than at the GC's pace.
	debug.FreeOSMemory()
	// Its live heap is about 10 MiB (symbols, names, the rings); without a
	// limit the collector lets the heap reach twice that between cycles,
	// and writing an incident (a few MB of JSON) grows it further. A soft
	// limit keeps it near the live heap at no measurable CPU cost
	// (docs/benchmarks.md); GOMEMLIMIT, if set, is the operator's.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	rec, err := New(opts, sess)
	if err != nil {
		return err
	}
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for ev := range sess.Events() {
			rec.HandleEvent(ev)
		}
	}()
	if onReady != nil {
		onReady(sess)
	}
	err = rec.Run(ctx)
	stopErr := sess.Stop()
	<-consumed
	return errors.Join(err, stopErr, sess.Close())
}

// memoryLimit is the recorder's soft limit on the Go runtime's memory.
const memoryLimit = 20 << 20

// Naming is what the recorder asks the probes to name: symbolized stacks
// (the flame graph) and containers.
func Naming() event.Naming {
	return event.Naming{Stacks: true, Symbols: true, Tasks: container.TaskNamer()}
}
