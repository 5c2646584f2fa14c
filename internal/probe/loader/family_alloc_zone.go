package loader

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
)

// The zone state at an allocation failure (issue 13, signal 3): the
// zones read from /proc as soon as the failure's record arrives, and the
// failure judged against them. A burst of failures reads once: the first
// failure after Config.ZoneStateEvery without one reads, the others reuse
// that reading, each judged for its own order and flags.

// zoneWatch holds the last reading.
type zoneWatch struct {
	reader *sysstate.ZoneReader
	every  uint64 // ns
	mu     sync.Mutex
	zones  []sysstate.ZoneInfo
	readNs uint64 // CLOCK_MONOTONIC of the last attempt, as bpf_ktime_get_ns
	warned bool
	// bits of the running kernel's GFP table the verdict needs.
	dma, dma32, highmem, movable, high, sleep uint64
}

func (s *Session) newZoneWatch() *zoneWatch {
	if s.cfg.ZoneStateEvery <= 0 || !s.cfg.has(event.SignalAlloc) {
		return nil
	}
	w := &zoneWatch{reader: sysstate.NewZoneReader("/proc"), every: uint64(s.cfg.ZoneStateEvery.Nanoseconds())}
	if t := s.names.dec.GFP; t != nil {
		w.dma, _ = t.Bit("__GFP_DMA")
		w.dma32, _ = t.Bit("__GFP_DMA32")
		w.highmem, _ = t.Bit("__GFP_HIGHMEM")
		w.movable, _ = t.Bit("__GFP_MOVABLE")
		w.high, _ = t.Bit("__GFP_HIGH")
	}
	w.sleep = s.gfpDirectReclaim
	return w
}

// judgeZones adds the zone state to an allocation failure.
func (s *Session) judgeZones(ev *event.Event) {
	w := s.zones
	if w == nil || ev.AllocFailure == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.readNs == 0 || ev.MonoNs >= w.readNs+w.every {
		w.readNs = monoNow()
		zones, err := w.reader.Read()
		w.zones = zones
		if err != nil && !w.warned {
			w.warned = true
			s.names.warn(fmt.Sprintf("zone state at failures unavailable: %v", err))
		}
	}
	if w.zones == nil {
		return
	}
	a := ev.AllocFailure
	st := sysstate.Classify(w.zones, w.request(a.Order, uint64(a.GFPFlags)))
	st.ReadAt = s.wallTime(w.readNs)
	st.ReadAfterNs = int64(w.readNs) - int64(ev.MonoNs)
	a.ZoneState = &st
}

// request is what the verdict needs of a failed request's order and mask
// (gfp_zone, gfp_to_alloc_flags).
func (w *zoneWatch) request(order uint32, gfp uint64) sysstate.FailedRequest {
	r := sysstate.FailedRequest{Order: int(order), HighestZone: "Normal", Movable: w.movable != 0 && gfp&w.movable != 0}
	switch {
	case w.dma != 0 && gfp&w.dma != 0:
		r.HighestZone = "DMA"
	case w.dma32 != 0 && gfp&w.dma32 != 0:
		r.HighestZone = "DMA32"
	case w.highmem != 0 && gfp&w.highmem != 0 && r.Movable:
		r.HighestZone = "Movable"
	case w.highmem != 0 && gfp&w.highmem != 0:
		r.HighestZone = "HighMem"
	}
	if w.high != 0 && gfp&w.high != 0 {
		r.Reserve = sysstate.ReserveHigh
		if w.sleep != 0 && gfp&w.sleep == 0 {
			r.Reserve = sysstate.ReserveAtomic
		}
	}
	return r
}

// monoNow is CLOCK_MONOTONIC in ns, the clock of bpf_ktime_get_ns.
func monoNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
