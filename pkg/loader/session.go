// Package loader loads memtrace's kernel programs, choosing for each signal
// the best hook the running kernel offers, and turns what they report into
// events, aggregates and counters.
package loader

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/pkg/event"
	"github.com/memtrace/memtrace/pkg/gfp"
	"github.com/memtrace/memtrace/pkg/rawbtf"
	"github.com/memtrace/memtrace/pkg/tracefs"
)

// attached is a family loaded and attached with one candidate.
type attached struct {
	family
	coll       *ebpf.Collection
	companions []*ebpf.Collection
	links      []link.Link
	reader     *ringbuf.Reader
}

// Session holds everything memtrace put into the kernel. Close removes it.
type Session struct {
	cfg      Config
	kernel   *btf.Spec
	btfCache *btf.Cache
	preempt  preemptLocation
	// gfpNowarn is __GFP_NOWARN on this kernel (0: unknown).
	gfpNowarn uint64
	families  map[event.Signal]*attached
	hooks     []event.HookStatus

	tracefsMu      sync.Mutex // guards the four fields below
	tracefsDir     string
	unmountTracefs func() error
	tracefsErr     error
	tracefsTried   bool

	events       chan event.Event
	wg           sync.WaitGroup
	stopOnce     sync.Once
	closeOnce    sync.Once
	done         chan struct{} // closed by Close: readers stop sending
	draining     atomic.Bool   // set by Stop: readers end after a flush
	decodeErrors atomic.Uint64

	// monoToWall converts bpf_ktime_get_ns (CLOCK_MONOTONIC) to wall time.
	monoToWall int64
}

// Open checks privileges, loads and attaches every requested signal with
// the best hook available, and starts reading their ring buffers. A signal
// with no usable hook is reported in Hooks() and does not stop the others;
// Open fails when no signal could be attached, and on a configuration the
// programs cannot express or an embedded object that does not match its
// Go bindings.
func Open(cfg Config) (*Session, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising RLIMIT_MEMLOCK for BPF maps: %w", err)
	}
	fams, err := requested(cfg)
	if err != nil {
		return nil, err
	}
	s := &Session{
		cfg:        cfg,
		families:   map[event.Signal]*attached{},
		events:     make(chan event.Event, 4096),
		done:       make(chan struct{}),
		monoToWall: monoToWallOffset(),
	}

	// Start-up is Go CPU, most of it parsing kernel BTF (~20 ms). What
	// does not need it runs beside it: parsing the embedded objects,
	// locating preempt_count in the raw BTF, and mounting tracefs.
	specs := make([]*ebpf.CollectionSpec, len(fams))
	specErrs := make([]error, len(fams))
	var prep sync.WaitGroup
	for i, f := range fams {
		prep.Go(func() { specs[i], specErrs[i] = f.load() })
	}
	// The raw kernel BTF is mapped and indexed once (~5 ms) for both of
	// its look-ups: preempt_count, and the GFP bit enum for nowarnBit.
	var rawPreemptErr error
	prep.Go(func() {
		raw, err := rawbtf.Map(rawbtf.KernelPath)
		if err != nil {
			rawPreemptErr = err
			return
		}
		defer raw.Close()
		s.preempt, rawPreemptErr = preemptFromRaw(raw)
		if cfg.has(event.SignalAlloc) {
			gfp.LocateKernelEnum(raw)
		}
	})
	if s.mayNeedTracefs(fams) {
		prep.Go(func() { s.ensureTracefs() })
	}
	// One cache for the session: kernel BTF is parsed once and shared by
	// CO-RE relocation and attach-target lookup of every load.
	cache := btf.NewCache()
	kernel, err := cache.Kernel()
	if err != nil {
		prep.Wait()
		s.Close()
		return nil, fmt.Errorf("%w: %v", errNoKernelBTF, err)
	}
	s.kernel, s.btfCache = kernel, cache
	prep.Wait()
	s.preempt = resolvePreempt(s.preempt, rawPreemptErr, kernel, kallsymsPath)
	if cfg.has(event.SignalAlloc) {
		s.gfpNowarn = s.nowarnBit()
	}
	// The embedded objects do not depend on the kernel: one that cannot be
	// parsed or lacks what the Go side expects is a build error.
	kcfg := s.config()
	for i, spec := range specs {
		err := specErrs[i]
		if err == nil {
			err = writeConfig(spec, kcfg)
		}
		if err != nil {
			s.Close()
			return nil, err
		}
	}

	// The families share nothing but the BTF cache (safe for concurrent
	// use) and tracefs (ensureTracefs is serialised), so CO-RE relocation,
	// map creation and the verifier of each run concurrently. Results are
	// collected in event.AllSignals order, so Hooks() does not depend on timing.
	atts := make([]*attached, len(fams))
	s.hooks = make([]event.HookStatus, len(fams))
	var load sync.WaitGroup
	for i, f := range fams {
		load.Go(func() { atts[i], s.hooks[i] = s.attach(f, specs[i]) })
	}
	load.Wait()
	for i, a := range atts {
		if a != nil {
			s.families[fams[i].signal] = a
		}
	}
	if len(s.families) == 0 {
		close(s.events)
		s.Close()
		var reasons []string
		for _, h := range s.hooks {
			for _, r := range h.Rejected {
				reasons = append(reasons, fmt.Sprintf("%s: %s: %s", h.Signal, r.Hook, r.Reason))
			}
		}
		return nil, fmt.Errorf("no signal could be attached on this kernel:\n  %s", strings.Join(reasons, "\n  "))
	}
	for _, a := range s.families {
		s.wg.Add(1)
		go s.read(a)
	}
	go func() {
		s.wg.Wait()
		close(s.events)
	}()
	return s, nil
}

// nowarnBit finds __GFP_NOWARN on this kernel (kernel BTF on 6.x, the
// tracepoint format before), so the warn_alloc hook can tell which
// failures the kernel will log. 0 when unknown.
func (s *Session) nowarnBit() uint64 {
	t, err := gfp.FromBTF(s.kernel)
	if err != nil {
		if s.ensureTracefs() != nil {
			return 0
		}
		if t, err = gfp.Load(s.tracefsDir, s.kernel, ""); err != nil {
			return 0
		}
	}
	bit, _ := t.Bit("__GFP_NOWARN")
	return bit
}

// mayNeedTracefs says whether a candidate or companion of fams that is
// not disabled uses tracefs, so Open can mount it early, beside the
// kernel BTF load, instead of on the first attach that needs it.
func (s *Session) mayNeedTracefs(fams []plan) bool {
	for _, f := range fams {
		for _, c := range slices.Concat(f.cands, f.companions) {
			if (c.needsTracefs || c.tracefsFallback) && !s.cfg.disabled(c.name) {
				return true
			}
		}
	}
	return false
}

// ensureTracefs mounts tracefs once if needed; classic tracepoints are
// looked up there. The mount is undone on Close. Families attach
// concurrently: the first caller mounts, the others wait for it.
func (s *Session) ensureTracefs() error {
	s.tracefsMu.Lock()
	defer s.tracefsMu.Unlock()
	if !s.tracefsTried {
		s.tracefsTried = true
		s.tracefsDir, s.unmountTracefs, s.tracefsErr = tracefs.Mount()
	}
	if s.tracefsErr != nil {
		return fmt.Errorf("tracefs unavailable: %v", s.tracefsErr)
	}
	return nil
}

// ContextSource says where the programs read preempt_count, which tells
// process, softirq, hardirq and NMI context apart, or why they cannot
// ("unavailable: …"; every event's context is then unknown).
func (s *Session) ContextSource() string {
	if s.preempt.src == allocPreemptSourcePREEMPT_NONE {
		return "unavailable: " + s.preempt.desc
	}
	return s.preempt.desc
}

// TracefsDir is where tracefs is mounted, "" if it could not be.
func (s *Session) TracefsDir() string { return s.tracefsDir }

// KernelBTF is the running kernel's BTF, loaded once for the session; nil
// after ReleaseKernelBTF.
func (s *Session) KernelBTF() *btf.Spec { return s.kernel }

// ReleaseKernelBTF drops the parsed kernel BTF (several MB) once the
// caller has built what it needed from it: a long-running watch on a host
// short of memory should not keep it. InjectAllocFailures reloads it.
func (s *Session) ReleaseKernelBTF() {
	s.kernel = nil
	s.btfCache = nil
}

// Hooks reports, per signal, the hook in use and why others were not.
func (s *Session) Hooks() []event.HookStatus { return s.hooks }

// Events delivers events with numbers but no names (an event.Decoder adds
// them) until the session is stopped and every ring buffer is drained;
// then the channel is closed.
func (s *Session) Events() <-chan event.Event { return s.events }

// Stop detaches every program, so no new event is produced, and lets the
// readers drain what is already in the ring buffers before Events closes.
// Maps stay readable (aggregates, counters, stacks) until Close.
func (s *Session) Stop() error {
	var errs []error
	s.stopOnce.Do(func() {
		for _, a := range s.families {
			for _, l := range a.links {
				errs = append(errs, l.Close())
			}
			a.links = nil
		}
		s.draining.Store(true)
		for _, a := range s.families {
			errs = append(errs, a.reader.Flush())
		}
	})
	return errors.Join(errs...)
}

// Close stops the session if needed and frees every map and program:
// nothing memtrace loaded stays in the kernel, and a tracefs mount it made
// is undone. Events not yet consumed are dropped.
func (s *Session) Close() error {
	errs := []error{s.Stop()}
	s.closeOnce.Do(func() {
		close(s.done)
		for _, a := range s.families {
			errs = append(errs, a.reader.Close())
		}
		s.wg.Wait()
		for _, a := range s.families {
			for _, c := range a.companions {
				c.Close()
			}
			a.coll.Close()
		}
		if s.unmountTracefs != nil {
			errs = append(errs, s.unmountTracefs())
		}
	})
	return errors.Join(errs...)
}

// DecodeErrors counts records that could not be decoded (never expected).
func (s *Session) DecodeErrors() uint64 { return s.decodeErrors.Load() }

func monoToWallOffset() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Now().UnixNano() - ts.Nano()
}

// wallTime converts a bpf_ktime_get_ns timestamp.
func (s *Session) wallTime(mono uint64) time.Time {
	return time.Unix(0, s.monoToWall+int64(mono))
}
