package serve

import (
	"fmt"
	"net/http"
	"time"

	"github.com/memtrace/memtrace/internal/present/promtext"
)

// newMux routes /metrics, /healthz and a small index. Every endpoint only
// reads: anything but GET and HEAD is refused, so nothing reachable over
// the network can change what is traced or how.
func newMux(reg *promtext.Registry, h *health) http.Handler {
	mux := http.NewServeMux()
	// Each scrape reads the kernel's maps: a few at a time is plenty. A
	// collector that cannot read a map reports it in a metric, so the
	// others are never hidden by one failure.
	mux.Handle("/metrics", reg.Handler(4, 20*time.Second))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := h.check(time.Now()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "unhealthy: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ok")
		for _, hk := range h.hooks {
			if hk.Attached {
				fmt.Fprintf(w, "%s: %s\n", hk.Signal, hk.Hook)
			} else {
				fmt.Fprintf(w, "%s: not attached\n", hk.Signal)
			}
		}
	})
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<html><head><title>memtrace</title></head><body><h1>memtrace</h1>`+
			`<p><a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a></p></body></html>`+"\n")
	})
	return readOnly(mux)
}

func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only: only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}
