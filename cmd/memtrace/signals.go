package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// stopSignals end a run the way Ctrl-C does: the probes are detached,
// tracefs is unmounted if memtrace mounted it, and the output (a capture's
// document, watch's summary, verify's verdict) is still written. SIGHUP is
// what a closed terminal or ssh session sends, and a run started there must
// clean up like any other.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// exitBrokenPipe is the status of a run whose standard output was closed
// by its reader (`memtrace watch --json | head`): 128+SIGPIPE, what a shell
// reports for any program stopped that way, but reached after cleanup.
const exitBrokenPipe = 128 + int(syscall.SIGPIPE)

var notifyPipe sync.Once

// runContext returns the context of one command's run: cancelled by INT,
// TERM or HUP. It also keeps a write to a closed pipe on standard output
// from killing the process: without a handler for SIGPIPE, Go's runtime
// exits at once on EPIPE from fd 1 or 2, skipping every deferred cleanup.
// With one, the write returns EPIPE and the command ends on that error.
//
// SIGPIPE itself does not cancel the run: serve gets one whenever a scraper
// hangs up mid-response, and verify's command may close pipes; only a
// failing write to standard output ends a run (see isBrokenStdout).
func runContext() (context.Context, context.CancelFunc) {
	notifyPipe.Do(func() {
		// Never read: buffered so the signal package can drop it, and
		// kept for the life of the process so that late writes (the final
		// error message) do not die either. Unlike signal.Ignore, a handled
		// signal is reset to its default in the commands verify starts.
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	})
	return signal.NotifyContext(context.Background(), stopSignals...)
}

// isBrokenStdout reports whether err is a write to standard output whose
// reader has gone.
func isBrokenStdout(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Path == os.Stdout.Name() && errors.Is(pe.Err, syscall.EPIPE)
}
