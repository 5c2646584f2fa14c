package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// promServer is a real Prometheus (Debian package prometheus) started on
// loopback for one test, scraping one target every second.
type promServer struct {
	url string
	cmd *exec.Cmd
	log *bytes.Buffer
}

// startPrometheus starts Prometheus with a scrape config for target and
// stops it when the test ends. A missing binary fails the test: this end-
// to-end test is the point of the exporter, and scripts/validate-deploy.sh
// installs the package.
func startPrometheus(t *testing.T, target string) *promServer {
	t.Helper()
	return startPrometheusWith(t, target, "")
}

// startPrometheusWith is startPrometheus evaluating the rules of a file
// too ("" for none).
func startPrometheusWith(t *testing.T, target, rules string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not installed (make test installs it as root on Debian: make test-deps): %v", err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: memtrace
    static_configs:
      - targets: [%q]
`, target)
	if rules != "" {
		abs, err := filepath.Abs(rules)
		if err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("rule_files: [%q]\n", abs)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// Port 0 is not an option for Prometheus: take a free one. Another
	// process could grab it in between; the start-up check says so.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &promServer{url: "http://" + addr, log: &bytes.Buffer{}}
	p.cmd = exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive a crashed test
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-exited
			t.Error("prometheus did not stop on SIGTERM within 20s; killed")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("prometheus exited: %v\n%s", err, p.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready within 30s\n%s", p.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sample is one series of an instant query's result.
type sample struct {
	Labels map[string]string
	Value  float64
}

// query runs an instant query through the HTTP API.
func (p *promServer) query(t *testing.T, q string) []sample {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatalf("querying %s: %v", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decoding the answer to %s: %v", q, err)
	}
	if body.Status != "success" || body.Data.ResultType != "vector" {
		t.Fatalf("query %s: status %q, type %q, error %q", q, body.Status, body.Data.ResultType, body.Error)
	}
	var out []sample
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("query %s: value %v: %v", q, r.Value[1], err)
		}
		out = append(out, sample{r.Metric, v})
	}
	return out
}

// waitFor queries until the sum over the result equals want, or fails
// after the timeout with the last result. It also fails at once when the
// sum goes past want: counters must be exact, not merely large enough.
func (p *promServer) waitFor(t *testing.T, q string, want float64) []sample {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []sample
	for {
		got = p.query(t, q)
		var sum float64
		for _, s := range got {
			sum += s.Value
		}
		switch {
		case sum == want:
			return got
		case sum > want:
			t.Fatalf("%s = %v, more than the %v provoked: %+v", q, sum, want, got)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: waited 30s for %v, last result %+v", q, want, got)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
