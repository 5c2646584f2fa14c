package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// pgbenchPhase: the realistic workload, a PostgreSQL server from Debian's
// packages on loopback in a scratch directory, driven by pgbench's
// TPC-B-like script. fsync and synchronous commit are off so that the
// run measures CPU and kernel work, not this VM's disk; autovacuum and
// checkpoints are kept out of the measured runs, whose noise they were.
func (e *env) pgbenchPhase(ctx context.Context) error {
	pg, err := startPostgres(ctx, e)
	if err != nil {
		return err
	}
	defer pg.stop()
	w := workload{name: "pgbench", metric: "tps", unit: "tx/s", higherIsBetter: true,
		run: func(ctx context.Context) (float64, error) { return pg.bench(ctx, e.pgSeconds) }}
	// One unmeasured run warms the buffer cache and the table files.
	if _, err := w.run(ctx); err != nil {
		return err
	}
	return e.interleave(ctx, w, e.pgRounds)
}

type postgres struct {
	bin, dir, data string
	port           int
	e              *env
}

func startPostgres(ctx context.Context, e *env) (*postgres, error) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(bins) == 0 {
		return nil, fmt.Errorf("PostgreSQL server not installed (scripts/bench.sh installs postgresql)")
	}
	sort.Strings(bins)
	pg := &postgres{bin: filepath.Dir(bins[len(bins)-1]), e: e}
	var err error
	// Not under e.work: the server runs as user postgres and must reach it.
	if pg.dir, err = os.MkdirTemp("", "memtrace-bench-pg-"); err != nil {
		return nil, fmt.Errorf("creating PostgreSQL directory: %w", err)
	}
	pg.data = filepath.Join(pg.dir, "data")
	if err := exec.Command("chown", "postgres:postgres", pg.dir).Run(); err != nil {
		os.RemoveAll(pg.dir)
		return nil, fmt.Errorf("giving %s to user postgres: %w", pg.dir, err)
	}
	if pg.port, err = freePort(); err != nil {
		os.RemoveAll(pg.dir)
		return nil, err
	}
	steps := [][]string{
		{"runuser", "-u", "postgres", "--", pg.bin + "/initdb", "-D", pg.data, "-A", "trust", "-U", "postgres", "--no-sync"},
		{"runuser", "-u", "postgres", "--", pg.bin + "/pg_ctl", "-D", pg.data, "-l", filepath.Join(pg.dir, "server.log"), "-w", "-o",
			fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB -c autovacuum=off -c checkpoint_timeout=1h -c max_wal_size=8GB", pg.port, pg.dir),
			"start"},
	}
	for i, s := range steps {
		if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
			if i > 0 {
				pg.stop()
			} else {
				os.RemoveAll(pg.dir)
			}
			return nil, fmt.Errorf("%s: %w: %s", filepath.Base(s[4]), err, lastLine(out))
		}
	}
	e.logf("PostgreSQL on 127.0.0.1:%d in %s; pgbench -i -s %d", pg.port, pg.dir, e.pgScale)
	if out, err := exec.CommandContext(ctx, "pgbench", append(pg.conn(), "-i", "-q", "-s", strconv.Itoa(e.pgScale), "postgres")...).CombinedOutput(); err != nil {
		pg.stop()
		return nil, fmt.Errorf("pgbench -i: %w: %s", err, lastLine(out))
	}
	return pg, nil
}

func (pg *postgres) conn() []string {
	return []string{"-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "postgres"}
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// bench runs pgbench for secs seconds with 4 clients on 2 threads.
func (pg *postgres) bench(ctx context.Context, secs int) (float64, error) {
	args := append(pg.conn(), "-n", "-M", "prepared", "-c", "4", "-j", "2", "-T", strconv.Itoa(secs), "postgres")
	out, err := exec.CommandContext(ctx, "pgbench", args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w: %s", err, lastLine(out))
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no tps in pgbench output: %s", lastLine(out))
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

// stop shuts the server down and removes its directory.
func (pg *postgres) stop() {
	cmd := exec.Command("runuser", "-u", "postgres", "--", pg.bin+"/pg_ctl", "-D", pg.data, "-m", "fast", "-w", "-t", "30", "stop")
	if out, err := cmd.CombinedOutput(); err != nil {
		pg.e.logf("stopping PostgreSQL: %v: %s", err, lastLine(out))
	}
	os.RemoveAll(pg.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLine(b []byte) string {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
