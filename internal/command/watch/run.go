package watch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/memtrace/memtrace/internal/aggregate/demand"
	"github.com/memtrace/memtrace/internal/decode/container"
	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/host/sysstate"
	"github.com/memtrace/memtrace/internal/present/text"
	"github.com/memtrace/memtrace/internal/present/tty"
	"github.com/memtrace/memtrace/internal/present/view"
)

// Options configure a watch.
type Options struct {
	Interval time.Duration
	// Start starts the probes (cmd/memtrace passes loader.Start with the
	// flags' configuration); Run asks for the names it shows.
	Start  func(event.Naming) (event.Source, error)
	Stacks int // failing stacks to show; 0 hides them
	JSON   bool
	Out    *os.File
	In     *os.File // keys ('q') when it is a terminal
	AgeOut time.Duration
	// OnReady runs once every probe is attached.
	OnReady func(event.Source)
	Title   string
	// StallThreshold lists the reclaim and compaction stalls at least
	// this long (the session sends them all: loader.Config.StallThreshold);
	// 0 lists none.
	StallThreshold time.Duration
}

// Terminal control: the alternate screen keeps the operator's scrollback
// intact, like top; the final summary is printed after leaving it.
const (
	enterAltScreen = "\x1b[?1049h\x1b[?25l"
	leaveAltScreen = "\x1b[?25h\x1b[?1049l"
	homeClear      = "\x1b[H\x1b[2J"
)

// Run shows the live view until ctx is done or 'q' is pressed, then
// prints a final summary and removes every probe.
func Run(ctx context.Context, opts Options) error {
	if opts.Start == nil {
		return errors.New("watch: no start function for the probes")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	sys, err := sysstate.NewReader("/proc", "/sys")
	if err != nil {
		return fmt.Errorf("reading system state: %w", err)
	}
	sess, err := opts.Start(event.Naming{
		// Symbols cost ~4 MB and ~80 ms: only when stacks are shown.
		Stacks: true, Symbols: opts.Stacks > 0, Tasks: container.TaskNamer(),
	})
	if err != nil {
		return err
	}
	defer sess.Close()
	if opts.OnReady != nil {
		opts.OnReady(sess)
	}
	// The session has dropped the parsed kernel BTF: return it to the OS.
	debug.FreeOSMemory()
	decoding := sess.Decoding()
	warnings := decoding.Warnings

	terminal := !opts.JSON && tty.IsTerminal(opts.Out)
	color := terminal && tty.UseColor(opts.Out)
	out := bufio.NewWriterSize(opts.Out, 64<<10)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// werr is the first failed write (a full disk, a closed pipe): nobody
	// sees the output any more, so the run ends there. bufio keeps the
	// error, so writes in between (events) need no check of their own.
	var werr error
	flush := func() {
		if werr == nil {
			if werr = out.Flush(); werr != nil {
				cancel()
			}
		}
	}
	if terminal && opts.In != nil && tty.IsTerminal(opts.In) {
		if restore, err := tty.Cbreak(opts.In); err == nil {
			defer restore()
			go readKeys(opts.In, cancel)
		}
	}
	resize := make(chan os.Signal, 1)
	if terminal {
		signal.Notify(resize, syscall.SIGWINCH)
		defer signal.Stop(resize)
		fmt.Fprint(out, enterAltScreen)
		flush()
	}
	leave := sync.OnceFunc(func() {
		if terminal {
			fmt.Fprint(out, leaveAltScreen)
			flush()
		}
	})
	defer leave()

	// Events: huge-page ones feed their table, and those a view counts
	// its table; with --json every event is streamed. The other tables
	// come from exact aggregates.
	var mu sync.Mutex
	var pending []event.Event
	enc := json.NewEncoder(out)
	done := make(chan struct{})
	model := NewModel(time.Now())
	if opts.AgeOut > 0 {
		model.AgeOut = opts.AgeOut
	}
	model.why.stallThreshold = opts.StallThreshold
	// Atomic demand is read every 100 ms, finer than the screen.
	meter := demand.StartLive(sess, 100*time.Millisecond, 0)
	defer meter.Stop()
	go func() {
		defer close(done)
		for ev := range sess.Events() {
			mu.Lock()
			if opts.JSON {
				_ = enc.Encode(&ev)
			}
			if ev.Kind == event.KindHugetlb || countedEvents(model, &ev) || model.kept(&ev) {
				pending = append(pending, ev)
			}
			mu.Unlock()
		}
	}()

	hostname, _ := os.Hostname()

	tick := func() {
		t := Tick{Now: time.Now(), System: sys.Take()}
		if r, ok := meter.Read(); ok {
			t.Demand = &r
		}
		readAggregates(sess, &t)
		t.Stats, _ = sess.Stats()
		mu.Lock()
		for _, ev := range pending {
			if ev.Kind == event.KindHugetlb {
				t.Hugetlb = append(t.Hugetlb, ev)
			} else {
				t.Events = append(t.Events, ev)
			}
		}
		pending = nil
		mu.Unlock()
		model.Update(t)
		_ = sess.ForgetPids(model.Aged)
	}
	view := func(final bool) View {
		v := View{Color: color, Stacks: opts.Stacks, Hooks: sess.Hooks(), Context: decoding.ContextSource, DecodeErrors: sess.DecodeErrors(), Final: final}
		title := opts.Title
		if title == "" {
			title = "memtrace watch"
		}
		v.Title = fmt.Sprintf("%s — %s — %s — every %s — up %s", title, text.Escape(hostname),
			model.Last.Format("15:04:05"), opts.Interval, Since(model.Start, model.Last))
		if final {
			v.Title = fmt.Sprintf("memtrace watch summary — %s — %s to %s (%s)", text.Escape(hostname),
				model.Start.Format("15:04:05"), model.Last.Format("15:04:05"), Since(model.Start, model.Last))
		}
		for _, w := range warnings {
			v.Title += "\n" + w
		}
		if terminal {
			cols, rows := tty.Size(opts.Out)
			v.Width = cols
			// The tables share what is left after ~22 fixed lines.
			fixed := 22 + stackLines(opts.Stacks)
			if opts.StallThreshold > 0 {
				fixed += stackLines(opts.Stacks) // the long stalls' stacks
			}
			v.MaxRows = max(3, (rows-fixed)/(3+len(model.counted)))
		}
		return v
	}
	draw := func() {
		mu.Lock()
		defer mu.Unlock()
		if opts.JSON {
			_ = enc.Encode(Summarize(model, sess.Hooks(), false))
			flush()
			return
		}
		var frame bytes.Buffer
		if !terminal {
			fmt.Fprintf(&frame, "===== %s =====\n", model.Last.Format(time.RFC3339))
		}
		Render(&frame, model, view(false))
		if terminal {
			cols, rows := tty.Size(opts.Out)
			out.WriteString(homeClear + fitScreen(frame.String(), cols, rows))
		} else {
			out.Write(frame.Bytes())
		}
		flush()
	}

	// The first screen comes at once, not after the first interval.
	tick()
	draw()
	ticker := time.NewTicker(opts.Interval)
	defer ticker.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-ticker.C:
			tick()
			draw()
		case <-resize:
			draw()
		}
	}

	// Detach, read what is left, and print the summary on the normal screen.
	meter.Stop()
	_ = sess.Stop()
	<-done
	tick()
	leave()
	mu.Lock()
	defer mu.Unlock()
	if werr == nil {
		if opts.JSON {
			_ = enc.Encode(Summarize(model, sess.Hooks(), true))
		} else {
			Render(out, model, view(true))
		}
		flush()
	}
	if werr != nil {
		return fmt.Errorf("writing the output: %w", werr)
	}
	return nil
}

// readAggregates reads every family's aggregates through its view: the
// families drawn by hand into their fields, the others into Rows. A read
// that fails is left out, so no key is forgotten.
func readAggregates(src event.Source, t *Tick) {
	t.Rows = map[event.Signal]any{}
	for _, f := range view.Families() {
		if f.Rows == nil {
			continue
		}
		rows, err := src.Aggregates(f.Signal)
		if err != nil {
			continue
		}
		switch r := rows.(type) {
		case []event.AllocAggregate:
			t.Alloc = r
		case []event.ExtfragAggregate:
			t.Extfrag = r
		default:
			t.Rows[f.Signal] = rows
		}
	}
}

func stackLines(n int) int {
	if n == 0 {
		return 0
	}
	return 2 + n*8
}

// readKeys cancels on 'q' (or Ctrl-D); other keys are ignored.
func readKeys(in io.Reader, cancel func()) {
	buf := make([]byte, 16)
	for {
		n, err := in.Read(buf)
		if err != nil {
			return
		}
		for _, c := range buf[:n] {
			if c == 'q' || c == 'Q' || c == 4 {
				cancel()
				return
			}
		}
	}
}
