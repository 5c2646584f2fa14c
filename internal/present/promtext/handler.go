package promtext

import (
	"bytes"
	"compress/gzip"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// ContentType is the text exposition format's media type.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Handler serves the registry's metrics: at most maxInFlight scrapes at
// a time (each reads the kernel's maps; more are refused with 503), each
// answered within timeout or refused with 503, gzip-compressed when the
// scraper accepts it (Prometheus does).
func (r *Registry) Handler(maxInFlight int, timeout time.Duration) http.Handler {
	slots := make(chan struct{}, maxInFlight)
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			http.Error(w, "too many scrapes in flight", http.StatusServiceUnavailable)
			return
		}
		// The body is built first, so a scrape that failed half-way
		// cannot leave a truncated exposition with a 200.
		var body bytes.Buffer
		if err := r.Write(&body); err != nil {
			http.Error(w, "writing metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", ContentType)
		if !acceptsGzip(req.Header.Get("Accept-Encoding")) {
			w.Write(body.Bytes())
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		if _, err := gz.Write(body.Bytes()); err != nil {
			slog.Debug("memtrace: metrics: writing the response", "err", err)
		}
		gz.Close()
	})
	return http.TimeoutHandler(h, timeout, "metrics not gathered in time\n")
}

// acceptsGzip reads Accept-Encoding: gzip listed without q=0.
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
