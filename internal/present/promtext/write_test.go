package promtext

import (
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var (
	countDesc = NewDesc("t_events_total", "Events.\nA second line, a \\ backslash.", []string{"signal", "comm"}, nil)
	gaugeDesc = NewDesc("t_free_bytes", "Free bytes.", nil, map[string]string{"node": "0"})
	histDesc  = NewDesc("t_stall_seconds", "Stalls.", []string{"kind"}, nil)
)

// sample sends one of each kind, in an order the output must not keep.
func sample(ch chan<- Metric) {
	ch <- MustNewConstMetric(countDesc, CounterValue, 3, "reclaim", `say "hi"\`+"\nbye")
	ch <- MustNewConstMetric(countDesc, CounterValue, 1e21, "alloc", "bad\xffutf8")
	ch <- MustNewConstMetric(gaugeDesc, GaugeValue, math.Inf(+1))
	ch <- MustNewConstHistogram(histDesc, 5, 0.25, map[float64]uint64{4e-6: 2, 2e-6: 1, math.Inf(+1): 5}, "direct")
}

// TestWriteGolden pins the exposition: families sorted by name, series by
// labels, labels by name, escaping, histograms, and values as Prometheus'
// own client writes them.
func TestWriteGolden(t *testing.T) {
	var b bytes.Buffer
	if err := NewRegistry(CollectorFunc(sample)).Write(&b); err != nil {
		t.Fatal(err)
	}
	golden := "testdata/exposition.golden"
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("exposition differs from %s (-update if intended):\n%s", golden, b.String())
	}
	// Prometheus' own parser reads it back, every value as written.
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("Prometheus' parser: %v", err)
	}
	if got := fams["t_events_total"].GetMetric()[1].GetLabel()[0].GetValue(); got != `say "hi"\`+"\nbye" {
		t.Errorf("label value read back as %q", got)
	}
	h := fams["t_stall_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 5 || h.GetSampleSum() != 0.25 || len(h.GetBucket()) != 3 || h.GetBucket()[1].GetCumulativeCount() != 2 {
		t.Errorf("histogram read back as %v", h)
	}
}

// TestDuplicatesDropped: a series sent twice, or a family sent with
// another type, is a bug; the scrape keeps the first and the rest.
func TestDuplicatesDropped(t *testing.T) {
	var logged bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	other := NewDesc("t_events_total", "Events.\nA second line, a \\ backslash.", []string{"x"}, nil)
	reg := NewRegistry(CollectorFunc(func(ch chan<- Metric) {
		ch <- MustNewConstMetric(countDesc, CounterValue, 1, "a", "b")
		ch <- MustNewConstMetric(countDesc, CounterValue, 2, "a", "b")
		ch <- MustNewConstMetric(other, GaugeValue, 2, "y")
		ch <- MustNewConstMetric(gaugeDesc, GaugeValue, 7)
	}))
	var b bytes.Buffer
	if err := reg.Write(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Count(b.String(), "t_events_total{") != 1 || !strings.Contains(b.String(), `t_events_total{comm="b",signal="a"} 1`) || !strings.Contains(b.String(), "t_free_bytes{node=\"0\"} 7") {
		t.Errorf("exposition:\n%s", b.String())
	}
	// The warning names the series as the exposition writes it.
	if !strings.Contains(logged.String(), `a series sent twice: t_events_total{comm=\"b\",signal=\"a\"}`) || strings.ContainsRune(logged.String(), 0) {
		t.Errorf("warnings: %q", logged.String())
	}
}

func TestBadDescriptionsPanic(t *testing.T) {
	for _, f := range []func(){
		func() { NewDesc("1bad", "", nil, nil) },
		func() { NewDesc("ok", "", []string{"le"}, nil) },
		func() { NewDesc("ok", "", []string{"a", "a"}, nil) },
		func() { NewDesc("ok", "", []string{"a-b"}, nil) },
		func() { MustNewConstMetric(countDesc, CounterValue, 1, "only one") },
		func() { MustNewConstMetric(gaugeDesc, CounterValue, -1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		}()
	}
}

// TestHandler: content type, gzip when accepted, plain otherwise, and
// scrapes beyond the in-flight limit refused rather than queued.
func TestHandler(t *testing.T) {
	release := make(chan struct{})
	var entered sync.WaitGroup
	block := false
	var mu sync.Mutex
	reg := NewRegistry(CollectorFunc(func(ch chan<- Metric) {
		mu.Lock()
		b := block
		mu.Unlock()
		if b {
			entered.Done()
			<-release
		}
		sample(ch)
	}))
	srv := httptest.NewServer(reg.Handler(1, 10*time.Second))
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != ContentType || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	resp.Body.Close()
	if !strings.Contains(string(body), "# TYPE t_stall_seconds histogram") {
		t.Errorf("gzip body:\n%s", body)
	}
	req.Header.Set("Accept-Encoding", "gzip;q=0, identity")
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "" || !strings.HasPrefix(string(body), "# HELP t_events_total") {
		t.Errorf("q=0: encoding %q, body %.40q", resp.Header.Get("Content-Encoding"), body)
	}

	mu.Lock()
	block = true
	mu.Unlock()
	entered.Add(1)
	first := make(chan int)
	go func() {
		r, err := http.Get(srv.URL)
		if err != nil {
			first <- 0
			return
		}
		r.Body.Close()
		first <- r.StatusCode
	}()
	entered.Wait()
	r, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second scrape in flight: %d, want 503", r.StatusCode)
	}
	close(release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("first scrape: %d", code)
	}
}

// FuzzLabelValue: whatever a label value holds (process names are
// untrusted), the exposition stays one that Prometheus' parser reads, with
// the value back as valid UTF-8.
func FuzzLabelValue(f *testing.F) {
	for _, s := range []string{"", "postgres", `a"b\c`, "x\ny", "bad\xff", "\u202e"} {
		f.Add(s)
	}
	d := NewDesc("f_total", "f", []string{"comm"}, nil)
	f.Fuzz(func(t *testing.T, v string) {
		var b bytes.Buffer
		NewRegistry(CollectorFunc(func(ch chan<- Metric) { ch <- MustNewConstMetric(d, CounterValue, 1, v) })).Write(&b)
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
		if err != nil {
			t.Fatalf("%q: %v\n%s", v, err, b.String())
		}
		if got := fams["f_total"].GetMetric()[0].GetLabel()[0].GetValue(); got != validValue(v) {
			t.Errorf("%q read back as %q", v, got)
		}
	})
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"":                     false,
		"gzip":                 true,
		"GZIP":                 true,
		"x-gzip":               true,
		"identity, gzip":       true,
		"gzip;q=1.0":           true,
		"gzip; q=0.5":          true,
		"gzip ; Q = 0.001":     true,
		"gzip;q=0":             false,
		"gzip;q=0.0, identity": false,
		"gzip; q=0.000":        false,
		"gzip;Q=0":             false,
		"gzip;q=nope":          false,
		"gzip;q=2":             false,
		"deflate, br":          false,
		"gzipx":                false,
		"*":                    false,
		"gzip;level=1;q=0":     false,
		"br;q=0, gzip;q=0.1":   true,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}

// FuzzAcceptsGzip: any header is read without a panic, and a weight of
// zero given to gzip alone always refuses.
func FuzzAcceptsGzip(f *testing.F) {
	for _, h := range []string{"gzip", "gzip;q=0", "identity, gzip;q=0.5", "x-gzip;;q=", ";,;=,"} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		acceptsGzip(h)
		if acceptsGzip("gzip;q=0, " + h) {
			t.Errorf("gzip;q=0, %q accepted", h)
		}
	})
}
