package promtext

import (
	"bytes"
	"compress/gzip"
	"log/slog"
	"net/http"
	"strconv"
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

// acceptsGzip reads Accept-Encoding (RFC 9110 12.5.3): gzip, or x-gzip,
// listed with a weight above zero. A malformed weight refuses, so an
// unreadable header gets the uncompressed body every client can read.
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		params := strings.Split(part, ";")
		enc := strings.TrimSpace(params[0])
		if !strings.EqualFold(enc, "gzip") && !strings.EqualFold(enc, "x-gzip") {
			continue
		}
		for _, p := range params[1:] {
			name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
				return err == nil && q > 0 && q <= 1
			}
		}
		return true
	}
	return false
}
