// Package serve keeps memtrace's probes attached and exposes what they
// count to Prometheus over HTTP: /metrics and /healthz, read-only.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/command/record"
	"github.com/memtrace/memtrace/internal/decode/container"
	"github.com/memtrace/memtrace/internal/decode/migratetype"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/internal/present/metrics"
	"github.com/memtrace/memtrace/internal/present/promtext"
	"github.com/memtrace/memtrace/pkg/gfp"
)

// DefaultListen is loopback: metrics name processes and containers, so
// exposing them beyond the host is the operator's decision (--listen).
const DefaultListen = "127.0.0.1:9479"

// Options configure Run.
type Options struct {
	Listen string
	// Start starts the probes (cmd/memtrace passes loader.Start with the
	// flags' configuration). Run calls it once it listens.
	Start func(event.Naming) (Session, error)
	// Metrics options; Metrics.GFPClass, Migratetype and Container are
	// filled in by Run.
	Metrics metrics.Options
	// SyncInterval is how often the in-kernel aggregates are read and
	// aged between scrapes; scrapes also read them.
	SyncInterval time.Duration
	Version      string
	// OnReady runs once the probes are attached and the server listens.
	OnReady func(addr net.Addr, s event.Source)
	// Record, when set, also runs the flight recorder (memtrace record)
	// on the same probes; its AgeOut is left to the exporter.
	Record *record.Options
}

// Session is what serve uses of the probes: an event.Source, and the
// names of the running kernel's GFP flags and migratetypes for the
// counters' labels.
type Session interface {
	event.Source
	GFP() *gfp.Table
	Migratetypes() *migratetype.Names
}

// Run serves until ctx is done, then stops serving, detaches every probe
// and removes them from the kernel.
func Run(ctx context.Context, opts Options) error {
	if opts.Start == nil {
		return errors.New("serve: no start function for the probes")
	}
	if opts.Listen == "" {
		opts.Listen = DefaultListen
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = 10 * time.Second
	}
	sys, err := sysstate.NewReader("/proc", "/sys")
	if err != nil {
		return fmt.Errorf("reading system state: %w", err)
	}
	// zoneinfo is most of a snapshot's cost; watermarks only move with
	// their sysctls (re-read at once when those change) or hotplug.
	sys.WatermarkMaxAge = time.Hour
	// Listen before loading anything: a port in use must not leave a
	// half-started exporter with programs in the kernel.
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", opts.Listen, err)
	}
	defer ln.Close()

	naming := event.Naming{}
	if opts.Record != nil {
		naming = record.Naming() // the incident files' stacks and containers
	}
	sess, err := opts.Start(naming)
	if err != nil {
		return err
	}
	defer sess.Close()
	var rec *record.Recorder
	if opts.Record != nil {
		ro := *opts.Record
		ro.AgeOut = 0
		if rec, err = record.New(ro, sess); err != nil {
			return err
		}
	}

	if t := sess.GFP(); t != nil {
		opts.Metrics.GFPClass = t.Class
	} else {
		slog.Warn("memtrace: GFP flags cannot be named on this kernel; gfp_class will be \"unknown\"", "err", sess.Decoding().Warnings)
	}
	mts := sess.Migratetypes()
	opts.Metrics.Migratetype = func(mt int32) string {
		if mt < 0 {
			return ""
		}
		return mts.Name(int(mt))
	}
	// The session has dropped the parsed kernel BTF: a long-running
	// exporter returns it to the OS.
	debug.FreeOSMemory()
	if opts.Metrics.ContainerLabels {
		opts.Metrics.Container = container.NewAttributor().Lookup
	}

	exp := metrics.New(sess, opts.Metrics)
	// Atomic demand is read every 100 ms: a burst lasts about that long.
	meter := demand.StartLive(sess, 100*time.Millisecond, metrics.PeakWindow)
	defer meter.Stop()
	reg := promtext.NewRegistry(
		exp,
		metrics.NewHostCollector(sys.Take),
		metrics.NewDemandCollector(meter.Read),
		promtext.ProcessCollector(),
		buildInfo(opts.Version),
	)
	health := &health{interval: opts.SyncInterval, hooks: sess.Hooks(), lastOK: time.Now()}

	// Every event must be read, or the ring buffers fill; huge-page ones,
	// and those a view counts, are counted here, the others are in the
	// exact aggregates.
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for ev := range sess.Events() {
			exp.HandleEvent(&ev)
			if rec != nil {
				rec.HandleEvent(ev)
			}
		}
	}()
	recorded := make(chan error, 1)
	recCtx, stopRec := context.WithCancel(context.Background())
	defer stopRec()
	if rec != nil {
		go func() { recorded <- rec.Run(recCtx) }()
	} else {
		recorded <- nil
	}

	srv := &http.Server{
		Handler:           newMux(reg, health),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(escapeMessages{slog.Default().Handler()}, slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if opts.OnReady != nil {
		opts.OnReady(ln.Addr(), sess)
	}

	ticker := time.NewTicker(opts.SyncInterval)
	defer ticker.Stop()
	var serveErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-served:
			serveErr = fmt.Errorf("serving metrics: %w", err)
			break loop
		case <-ticker.C:
			if err := exp.Sync(); err != nil {
				slog.Warn("memtrace: reading in-kernel aggregates", "err", err)
			} else {
				health.ok(time.Now())
			}
		}
	}

	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		slog.Warn("memtrace: stopping the HTTP server", "err", err)
	}
	// The recorder writes the incident it is recording; then detach,
	// drain what the ring buffers hold, and free everything.
	stopRec()
	recErr := <-recorded
	meter.Stop()
	stopErr := sess.Stop()
	<-consumed
	return errors.Join(serveErr, recErr, stopErr, sess.Close())
}

func buildInfo(version string) promtext.Collector {
	if version == "" {
		version = "dev"
	}
	d := promtext.NewDesc("memtrace_build_info", "Always 1; the version label is memtrace's version.", nil, map[string]string{"version": version})
	return promtext.CollectorFunc(func(ch chan<- promtext.Metric) { ch <- promtext.MustNewConstMetric(d, promtext.GaugeValue, 1) })
}

// health is what /healthz reports: the probes are attached and the
// in-kernel aggregates were read recently.
type health struct {
	interval time.Duration
	hooks    []event.HookStatus

	mu     sync.Mutex
	lastOK time.Time
}

func (h *health) ok(t time.Time) {
	h.mu.Lock()
	h.lastOK = t
	h.mu.Unlock()
}

// check returns an error when the last good read is older than three
// sync intervals.
func (h *health) check(now time.Time) error {
	h.mu.Lock()
	last := h.lastOK
	h.mu.Unlock()
	if age := now.Sub(last); age > 3*h.interval {
		return fmt.Errorf("in-kernel aggregates not read for %s", age.Round(time.Second))
	}
	return nil
}
