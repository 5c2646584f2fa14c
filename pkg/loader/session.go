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

// family is one C file's program set and the maps every output reads.
type family struct {
	signal     Signal
	load       func() (*ebpf.CollectionSpec, error)
	ringbuf    string
	stats      string
	candidates []candidate
	// companions are attached beside whichever candidate succeeded,
	// sharing its maps; each may fail on its own.
	companions []candidate
}

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
	families  map[Signal]*attached
	hooks     []HookStatus

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
// Open fails only when no signal could be attached.
func Open(cfg Config) (*Session, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("raising RLIMIT_MEMLOCK for BPF maps: %w", err)
	}
	allocCands, err := allocCandidates(cfg.AllocHook)
	if err != nil {
		return nil, err
	}
	all := map[Signal]family{
		SignalAlloc:   {SignalAlloc, loadAlloc, "alloc_events", "alloc_stats", allocCands, []candidate{warnAllocCompanion()}},
		SignalExtfrag: {SignalExtfrag, loadExtfrag, "extfrag_events", "extfrag_stats", extfragCandidates(), nil},
		SignalHugetlb: {SignalHugetlb, loadHugetlb, "hugetlb_events", "hugetlb_stats", hugetlbCandidates(), nil},
	}
	var fams []family
	for _, sig := range AllSignals {
		if cfg.has(sig) {
			fams = append(fams, all[sig])
		}
	}
	s := &Session{
		cfg:        cfg,
		families:   map[Signal]*attached{},
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
		if cfg.has(SignalAlloc) {
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
	if cfg.has(SignalAlloc) {
		s.gfpNowarn = s.nowarnBit()
	}

	// The families share nothing but the BTF cache (safe for concurrent
	// use) and tracefs (ensureTracefs is serialised), so CO-RE relocation,
	// map creation and the verifier of each run concurrently. Results are
	// collected in AllSignals order, so Hooks() does not depend on timing.
	atts := make([]*attached, len(fams))
	s.hooks = make([]HookStatus, len(fams))
	var load sync.WaitGroup
	for i, f := range fams {
		load.Go(func() { atts[i], s.hooks[i] = s.attach(f, specs[i], specErrs[i]) })
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

// attach tries the family's candidates in order of preference, on the
// family's parsed object (base, or why it could not be parsed). It returns
// the family attached, nil if no candidate could be.
func (s *Session) attach(f family, base *ebpf.CollectionSpec, baseErr error) (*attached, HookStatus) {
	st := HookStatus{Signal: f.signal}
	if baseErr != nil {
		st.Rejected = append(st.Rejected, Attempt{"(all)", fmt.Sprintf("loading embedded BPF object: %v", baseErr)})
		return nil, st
	}
	for _, c := range f.candidates {
		if s.cfg.disabled(c.name) {
			st.Rejected = append(st.Rejected, Attempt{c.name, "disabled by configuration"})
			continue
		}
		if c.needsTracefs {
			if err := s.ensureTracefs(); err != nil {
				st.Rejected = append(st.Rejected, Attempt{c.name, err.Error()})
				continue
			}
		}
		coll, links, hook, err := s.loadCandidate(base, c, nil)
		if err != nil {
			st.Rejected = append(st.Rejected, Attempt{c.name, shortError(err)})
			continue
		}
		rd, err := ringbuf.NewReader(coll.Maps[f.ringbuf])
		if err != nil {
			closeLinks(links)
			coll.Close()
			st.Rejected = append(st.Rejected, Attempt{c.name, fmt.Sprintf("opening ring buffer: %v", err)})
			continue
		}
		st.Hook = hook
		st.Attached = true
		st.Note = c.note
		a := &attached{family: f, coll: coll, links: links, reader: rd}
		for _, comp := range f.companions {
			st.Companions = append(st.Companions, s.attachCompanion(base, a, comp))
		}
		return a, st
	}
	return nil, st
}

// attachCompanion loads a companion program into the maps of the attached
// family, so its records arrive in the same ring buffer.
func (s *Session) attachCompanion(base *ebpf.CollectionSpec, a *attached, c candidate) Companion {
	st := Companion{Hook: c.name, Note: c.note}
	if s.cfg.disabled(c.name) {
		st.Reason = "disabled by configuration"
		return st
	}
	if c.tracefsFallback {
		// Best effort: without tracefs the fallback fails, not the hook.
		_ = s.ensureTracefs()
	}
	coll, links, _, err := s.loadCandidate(base, c, a.coll.Maps)
	if err != nil {
		st.Reason = shortError(err)
		return st
	}
	a.companions = append(a.companions, coll)
	a.links = append(a.links, links...)
	st.Attached = true
	return st
}

// loadCandidate loads and attaches one candidate and returns the hook's
// name as attached (with the resolved target for fexit). Maps named in
// shared are used instead of new ones.
func (s *Session) loadCandidate(base *ebpf.CollectionSpec, c candidate, shared map[string]*ebpf.Map) (*ebpf.Collection, []link.Link, string, error) {
	spec := base.Copy()
	keep := map[string]bool{}
	for _, p := range c.programs {
		keep[p] = true
	}
	// Prune the programs of other hooks: they would be loaded (and may be
	// refused) for nothing.
	for name := range spec.Programs {
		if !keep[name] {
			delete(spec.Programs, name)
		}
	}
	if err := s.setVariables(spec); err != nil {
		return nil, nil, "", err
	}
	hook := c.name
	if c.prepare != nil {
		h, err := c.prepare(spec, s.kernel)
		if err != nil {
			return nil, nil, "", err
		}
		hook = h
	}
	replace := map[string]*ebpf.Map{}
	for name := range spec.Maps {
		if m, ok := shared[name]; ok {
			replace[name] = m
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		MapReplacements: replace,
		Cache:           s.btfCache,
		Programs:        ebpf.ProgramOptions{KernelTypes: s.kernel},
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("loading %s: %w", hook, explainLoadError(err))
	}
	links, err := c.attach(coll)
	if err != nil {
		coll.Close()
		return nil, nil, "", explainLoadError(err)
	}
	return coll, links, hook, nil
}

// setVariables writes the load-time configuration into the spec. A
// variable a program set does not declare is skipped.
func (s *Session) setVariables(spec *ebpf.CollectionSpec) error {
	var comm [16]byte
	if s.cfg.Comm != "" {
		if err := CheckComm(s.cfg.Comm); err != nil {
			return fmt.Errorf("comm filter: %w", err)
		}
	}
	copy(comm[:], s.cfg.Comm)
	pbo := int32(s.cfg.PageblockOrder)
	if pbo <= 0 {
		pbo = 9
	}
	vars := map[string]any{
		"preempt_src":      s.preempt.src,
		"percpu_rq_off":    s.preempt.rqOff,
		"percpu_pc_off":    s.preempt.pcOff,
		"filter_tgid":      s.cfg.Pid,
		"filter_cgroup":    s.cfg.CgroupID,
		"filter_comm_len":  uint8(len(s.cfg.Comm)),
		"filter_comm":      comm,
		"sample_first":     s.cfg.SampleFirst,
		"pageblock_order":  pbo,
		"large_shared_min": s.cfg.LargeSharedMin,
		"fallback_min":     s.cfg.FallbackMin,
		"nr_shmget":        uint32(unix.SYS_SHMGET),
		"nr_mmap":          uint32(unix.SYS_MMAP),
		"nr_shmat":         uint32(unix.SYS_SHMAT),
		"map_hugetlb":      uint64(unix.MAP_HUGETLB),
		"map_anonymous":    uint64(unix.MAP_ANONYMOUS),
		"map_type_mask":    uint64(0x0f),
		"shm_hugetlb":      uint64(shmHugetlb),
		"gfp_nowarn":       s.gfpNowarn,
	}
	for name, val := range vars {
		v, ok := spec.Variables[name]
		if !ok {
			continue
		}
		if err := v.Set(val); err != nil {
			return fmt.Errorf("setting %s: %w", name, err)
		}
	}
	return nil
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

// shmHugetlb is SHM_HUGETLB from linux/shm.h (same on every architecture;
// x/sys/unix does not define it).
const shmHugetlb = 0o4000

// mayNeedTracefs says whether a candidate or companion of fams that is
// not disabled uses tracefs, so Open can mount it early, beside the
// kernel BTF load, instead of on the first attach that needs it.
func (s *Session) mayNeedTracefs(fams []family) bool {
	for _, f := range fams {
		for _, c := range slices.Concat(f.candidates, f.companions) {
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
	if s.preempt.src == preemptNone {
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
func (s *Session) Hooks() []HookStatus { return s.hooks }

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

// shortError keeps the first line of an error (verifier logs are long),
// without cilium/ebpf's RLIMIT_MEMLOCK hint: Open has already lifted it.
func shortError(err error) string {
	msg := strings.ReplaceAll(err.Error(), " (MEMLOCK may be too low, consider rlimit.RemoveMemlock)", "")
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// explainLoadError adds what a user can do about common refusals.
func explainLoadError(err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (the kernel refused this program type: lockdown, a security module, or missing capabilities)", err)
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%w (not supported by this kernel)", err)
	}
	return err
}
