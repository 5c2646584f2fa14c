// Package loader is memtrace's session core: Start loads the kernel
// programs of the requested signal families, choosing for each the best
// hook the running kernel offers, and turns what they report into named
// events, aggregates and counters. Every tracing command starts here.
package loader

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/rawbtf"
	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/internal/probe/tracefs"
	"github.com/memtrace/memtrace/pkg/gfp"
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
	// gfpNowarn is __GFP_NOWARN on this kernel (0: unknown); likewise
	// __GFP_DIRECT_RECLAIM and __GFP_HIGH, for atomic demand.
	gfpNowarn, gfpDirectReclaim, gfpHigh uint64
	// zones judges allocation failures against the zones (nil: off).
	zones *zoneWatch
	// pageblockOrder is the host's (0: unknown, the programs use 9).
	pageblockOrder int
	names          names
	families       map[event.Signal]*attached
	hooks          []event.HookStatus

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

// Start is how every tracing command begins. It checks privileges, finds
// what the probes need of the host (kernel BTF, preempt_count, pageblock
// order, tracefs), loads and attaches every requested signal with the best
// hook available, builds the names of the running kernel, and starts
// reading the ring buffers: events and aggregates come out named (GFP
// flags, migratetypes, errno, syscall flags, stacks, and cgroups and
// containers through n.Tasks). A signal with no usable hook is reported
// in Hooks() and does not stop the others; Start fails when no signal
// could be attached, and on a configuration the programs cannot express
// or an embedded object that does not match its Go bindings.
func Start(cfg Config, n Naming) (*Session, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
	if err := liftMemlock(); err != nil {
		return nil, err
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
	// its look-ups: preempt_count, and the GFP bit enum for the GFP names.
	var rawPreemptErr error
	var gfpEnum []gfp.EnumMember
	rawMapped := false
	prep.Go(func() {
		raw, err := rawbtf.Map(rawbtf.KernelPath)
		if err != nil {
			rawPreemptErr = err
			return
		}
		defer raw.Close()
		rawMapped = true
		s.preempt, rawPreemptErr = preemptFromRaw(raw)
		gfpEnum = rawGFPEnum(raw)
	})
	// The host's memory geometry: pageblock order for the programs, the
	// default huge page size for the names. Where tracefs is mounted for
	// the probes, the pageblock order is read from a tracepoint's format
	// first, so that /proc/pagetypeinfo is not (pageblockFromTracefs).
	var geo sysstate.Geometry
	needTracefs := s.mayNeedTracefs(fams)
	prep.Go(func() {
		if needTracefs && s.ensureTracefs() == nil {
			s.pageblockFromTracefs()
		}
		var err error
		if geo, err = sysstate.ReadGeometry("/proc", "/sys"); err != nil {
			s.names.decoding.Warnings = append(s.names.decoding.Warnings, fmt.Sprintf("pageblock order unknown, assuming 9: %v", err))
		}
	})
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
	s.pageblockOrder = cmp.Or(cfg.PageblockOrder, geo.PageblockOrder)
	// The GFP table names flags and gives the programs __GFP_NOWARN.
	if !rawMapped {
		gfpEnum = parsedGFPEnum(kernel)
	}
	s.buildGFP(kernelRelease(), gfpEnum)
	// The embedded objects do not depend on the kernel: one that cannot be
	// parsed or lacks what the Go side expects is a build error.
	kcfg := s.config()
	for i, spec := range specs {
		err := specErrs[i]
		if err == nil {
			err = writeConfig(spec, kcfg)
		}
		if err == nil && fams[i].configure != nil {
			err = fams[i].configure(cfg, spec)
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
	load.Go(s.buildMigratetypes)
	load.Wait()
	for _, f := range fams {
		if f.kernelNames != nil {
			f.kernelNames(kernel, &s.names.dec)
		}
	}
	// Everything that needed the parsed kernel BTF (several MB) is built:
	// a long-running session should not keep it. InjectAllocFailures
	// reloads it.
	s.kernel, s.btfCache = nil, nil
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
	s.finishNames(n, geo.HugepageSizeKB*1024)
	s.zones = s.newZoneWatch()
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

// mayNeedTracefs says whether a candidate or companion of fams that is
// not disabled uses tracefs, so Start can mount it early, beside the
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

// pageblockFromTracefs finds the running kernel's pageblock order in the
// print format of kmem/mm_page_alloc_extfrag, which prints it as the
// constants it was compiled from, and gives it to sysstate, whose readers
// in this process then do not read /proc/pagetypeinfo for it: the kernel
// generates that whole file for its first line, walking every free list
// and pageblock with the zone lock held and interrupts off, 14-22 ms of
// one CPU at every start on a 24 GiB host. A format it cannot evaluate
// leaves pagetypeinfo to be read as before.
func (s *Session) pageblockFromTracefs() {
	b, err := os.ReadFile(filepath.Join(s.tracefsDir, "events/kmem/mm_page_alloc_extfrag/format"))
	if err != nil {
		return
	}
	if order, err := sysstate.PageblockOrderFromFormat(b); err == nil {
		sysstate.KnowHostPageblockOrder(order, sysstate.PageblockFromTracepointFormat)
	}
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

// Hooks reports, per signal, the hook in use and why others were not.
func (s *Session) Hooks() []event.HookStatus { return s.hooks }

// Events delivers events, named for the running kernel, until the session is stopped and every ring buffer is drained;
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

// kernelRelease is uname -r, for the built-in GFP table when neither
// tracefs nor kernel BTF can name the flags.
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func monoToWallOffset() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Now().UnixNano() - ts.Nano()
}

// wallTime converts a bpf_ktime_get_ns timestamp.
func (s *Session) wallTime(mono uint64) time.Time {
	return time.Unix(0, s.monoToWall+int64(mono))
}
