// Command vm runs memtrace's privileged test suite and the memtrace binary
// end to end on another kernel: Debian 12's 6.1 by default, booted under
// qemu. It fetches the kernel and busybox-static through apt (cached in
// -cache, unpacked, never installed), builds static test binaries of the
// privileged packages and the memtrace, provoke and e2e programs, packs
// them with a small init (test/vm/guest) into an initramfs, boots it, and
// streams the results back over a serial port. The VM always powers off;
// qemu is killed at -timeout.
//
//	go run ./test/vm                      # what `make test-kernels` runs
//	go run ./test/vm -pkgs ./pkg/loader -run TestEveryHook
//	go run ./test/vm -docs docs/kernels.md   # rewrite the kernels table
//
// With -host (the default when root) the e2e program also runs on this
// machine, so both kernels' hook choices are shown side by side. The exit
// code is non-zero when a test or an e2e check failed, when a kernel did
// not choose the hooks it should (see expectations), or when the VM did
// not finish.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

type options struct {
	kernel, cache, out, cgroup, accel, run, docs, cmdline string
	pkgs                                                  []string
	mem, cpus                                             int
	timeout, testTimeout                                  time.Duration
	host, e2e, verbose                                    bool
}

func main() {
	var o options
	var pkgs string
	flag.StringVar(&o.kernel, "kernel", "linux-image-amd64", "kernel image package (the metapackage resolves to the newest linux-image-6.1.0-N-amd64)")
	flag.StringVar(&o.cache, "cache", envOr("MEMTRACE_VM_CACHE", "/var/cache/memtrace-vm"), "where packages are kept between runs ($MEMTRACE_VM_CACHE)")
	flag.StringVar(&o.out, "out", "", "directory for logs, captures and summaries (default: CACHE/results/KERNEL)")
	flag.StringVar(&o.cgroup, "cgroup", "v1", "guest memory cgroup: v1 (as on the CI host) or v2 (Debian 12's default)")
	flag.StringVar(&o.accel, "accel", "auto", "auto (kvm only with kvm_intel or kvm_amd loaded), kvm or tcg")
	flag.StringVar(&pkgs, "pkgs", strings.Join(defaultPackages, ","), "packages whose tests run in the guest (comma-separated)")
	flag.StringVar(&o.run, "run", "", "only tests matching this regexp (-test.run)")
	flag.BoolVar(&o.e2e, "e2e", true, "run the memtrace binary end to end (test/vm/e2e) in the guest")
	flag.BoolVar(&o.host, "host", os.Geteuid() == 0, "also run test/vm/e2e on this machine (needs root)")
	flag.StringVar(&o.docs, "docs", "", "write the supported-kernels table to this file (docs/kernels.md)")
	flag.StringVar(&o.cmdline, "append", "", "extra kernel command line")
	flag.IntVar(&o.mem, "mem", 2048, "guest memory in MiB (at most 2048: provoke's logged warn_alloc failure on 6.1 needs less than 2 GiB)")
	flag.IntVar(&o.cpus, "smp", 1, "guest CPUs (with 2 under TCG on a 2-core host, a busy host starves one vCPU and the guest stalls in RCU)")
	flag.DurationVar(&o.timeout, "timeout", 25*time.Minute, "kill the VM after this long")
	flag.DurationVar(&o.testTimeout, "test-timeout", 10*time.Minute, "-test.timeout of each test binary")
	flag.BoolVar(&o.verbose, "v", true, "echo the guest's output as it arrives")
	flag.Parse()
	for _, p := range strings.Split(pkgs, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.pkgs = append(o.pkgs, p)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, o options) (bool, error) {
	repo, err := repoRoot()
	if err != nil {
		return false, err
	}
	if err := ensureQemu(); err != nil {
		return false, err
	}
	pkg, err := resolveKernel(o.kernel)
	if err != nil {
		// Offline: the kernel a previous run cached will do.
		m, _ := filepath.Glob(filepath.Join(o.cache, "debs", "linux-image-*.deb"))
		if len(m) == 0 {
			return false, err
		}
		pkg, _, _ = strings.Cut(filepath.Base(m[len(m)-1]), "_")
		fmt.Fprintf(os.Stderr, "vm: %v; using the cached %s\n", err, pkg)
	}
	vmlinuz, release, kdeb, err := kernelFiles(o.cache, pkg)
	if err != nil {
		return false, err
	}
	bb, bbdeb, err := busybox(o.cache)
	if err != nil {
		return false, err
	}
	prune(o.cache, kdeb, bbdeb)
	if o.out == "" {
		o.out = filepath.Join(o.cache, "results", release)
	}
	// Results of an earlier run would be mistaken for this one's.
	if err := os.RemoveAll(o.out); err != nil {
		return false, fmt.Errorf("clearing %s: %w", o.out, err)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return false, fmt.Errorf("creating %s: %w", o.out, err)
	}
	work, err := os.MkdirTemp("", "memtrace-vm-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(work)

	t0 := time.Now()
	bins := filepath.Join(work, "bin")
	if err := build(repo, bins, o.pkgs); err != nil {
		return false, err
	}
	plan := makePlan(o)
	initrd := filepath.Join(work, "initramfs.cpio")
	if err := writeInitramfs(initrd, repo, bins, bb, plan); err != nil {
		return false, err
	}
	fi, _ := os.Stat(initrd)
	accel := chooseAccel(o.accel)
	fmt.Fprintf(os.Stderr, "vm: %s (%s), initramfs %d MiB built in %.0fs; booting with %s, %d MiB, %d CPUs\n",
		release, pkg, fi.Size()>>20, time.Since(t0).Seconds(), accel, o.mem, o.cpus)

	cfg := vmConfig{
		vmlinuz: vmlinuz, initramfs: initrd, memMiB: o.mem, cpus: o.cpus, accel: accel,
		console: filepath.Join(o.out, "console.log"), timeout: o.timeout, cmdline: o.cmdline,
	}
	var echo *os.File
	if o.verbose {
		echo = os.Stdout
	}
	started := time.Now()
	stream, took, bootErr := boot(ctx, cfg, echo)
	r := &runResult{kernel: release, pkg: pkg, accel: accel, took: took, bootErr: bootErr, stream: stream, started: started}
	if stream != nil {
		if err := saveStream(o.out, stream); err != nil {
			return false, err
		}
	}
	var hostRes *hostResult
	if o.host && o.e2e && ctx.Err() == nil {
		hostRes = runHostE2E(ctx, bins, filepath.Join(o.out, "host"))
	}
	ok := report(os.Stdout, r, hostRes, o)
	if o.docs != "" {
		if err := writeDocs(o.docs, r, hostRes, o); err != nil {
			return false, err
		}
	}
	fmt.Printf("vm: results in %s\n", o.out)
	return ok, nil
}

// makePlan lists the guest's steps: the end-to-end run first (the
// headline; a hanging test later cannot hide it), then one step per test
// binary, run in its package's directory.
func makePlan(o options) proto.Plan {
	plan := proto.Plan{Cgroup: o.cgroup}
	if o.e2e {
		plan.Steps = append(plan.Steps, proto.Step{
			Name:    "e2e",
			Dir:     "/tmp",
			Args:    []string{"/vm/bin/e2e", "-memtrace", "/vm/bin/memtrace", "-provoke", "/vm/bin/provoke", "-out", "/tmp/e2e"},
			Timeout: 10 * time.Minute,
			Files:   []string{"/tmp/e2e/*.json"},
		})
	}
	for _, p := range o.pkgs {
		rel := strings.TrimPrefix(filepath.Clean(p), "./")
		args := []string{"/vm/bin/" + filepath.Base(rel) + ".test", "-test.v", "-test.count=1", "-test.timeout=" + o.testTimeout.String()}
		if o.run != "" {
			args = append(args, "-test.run="+o.run)
		}
		plan.Steps = append(plan.Steps, proto.Step{
			Name: rel, Dir: "/src/" + rel, Args: args,
			// The guest kills the binary shortly after its own timeout
			// had the chance to print the stuck goroutines.
			Timeout: o.testTimeout + 30*time.Second,
		})
	}
	return plan
}
