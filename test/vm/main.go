// Command vm runs memtrace's privileged test suite and the memtrace binary
// end to end on other kernels: Debian 12's 6.1, Debian 11's 5.10 and
// Debian 13's 6.12 on amd64 and Debian 12's 6.1 on arm64 by default, booted one after the
// other under qemu. It fetches the kernels
// and busybox-static through apt (each Debian suite through a private apt
// state in -cache; unpacked, never installed), builds static test binaries
// of the privileged packages and the memtrace, provoke and e2e programs
// once, packs them with a small init (test/vm/guest) into an initramfs,
// boots each kernel with it, and streams the results back over a serial
// port. Each VM always powers off; qemu is killed at -timeout.
//
//	go run ./test/vm                      # what `make test-kernels` runs
//	go run ./test/vm -kernel bullseye:linux-image-amd64 -pkgs ./internal/probe/loader -run TestEveryHook
//	go run ./test/vm -docs docs/kernels.md   # rewrite the kernels table
//
// With -host (the default when root) the e2e program also runs on this
// machine, so every kernel's hook choices are shown side by side. The exit
// code is non-zero when a test or an e2e check failed on any kernel, when
// a kernel did not choose the hooks it should (expect.go), or when a
// kernel could not be fetched or its VM did not finish.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
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
	lab                                                   bool
	labDocs, labArgs                                      string
}

func main() {
	var o options
	var pkgs string
	flag.StringVar(&o.kernel, "kernel", defaultKernels, "kernels to boot, in order: comma-separated SUITE:PACKAGE (a Debian suite, through a private apt state in -cache) or PACKAGE (the host's apt sources); linux-image-amd64 (linux-image-arm64) resolves to the suite's newest kernel; arm64 kernels run under qemu-system-aarch64")
	flag.StringVar(&o.cache, "cache", envOr("MEMTRACE_VM_CACHE", "/var/cache/memtrace-vm"), "where packages are kept between runs ($MEMTRACE_VM_CACHE)")
	flag.StringVar(&o.out, "out", "", "directory for logs, captures and summaries: OUT/RELEASE per kernel, OUT/host for this machine (default: CACHE/results)")
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
	flag.DurationVar(&o.timeout, "timeout", 25*time.Minute, "kill each VM after this long (per kernel, not for the whole run)")
	flag.DurationVar(&o.testTimeout, "test-timeout", 10*time.Minute, "-test.timeout of each test binary")
	flag.BoolVar(&o.verbose, "v", true, "echo the guest's output as it arrives")
	flag.BoolVar(&o.lab, "lab", false, "run the incident lab (test/lab) instead of the tests: make lab")
	flag.StringVar(&o.labDocs, "lab-docs", "", "with -lab, write the lab's report to this file (docs/lab.md)")
	flag.StringVar(&o.labArgs, "lab-args", "", "with -lab, more arguments for test/lab in the guest, space-separated (-scenarios 2)")
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
	start := time.Now()
	if o.lab {
		labMode(&o)
	}
	entries, err := parseKernels(o.kernel)
	if err != nil {
		return false, err
	}
	repo, err := repoRoot()
	if err != nil {
		return false, err
	}
	host := hostApt()
	for _, arch := range kernelArchs(entries) {
		m, err := machineFor(arch)
		if err != nil {
			return false, err
		}
		if err := ensureQemu(host, m); err != nil {
			return false, err
		}
	}
	if o.out == "" {
		o.out = filepath.Join(o.cache, "results")
	}
	runs, busyboxes, err := fetchKernels(o.cache, host, entries)
	if err != nil {
		return false, err
	}
	work, err := os.MkdirTemp("", "memtrace-vm-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(work)

	// One build and one initramfs per architecture for all its kernels:
	// the guest's plan does not depend on the kernel. The host's e2e runs
	// the host architecture's build.
	initrds := map[string]string{}
	for arch, bb := range busyboxes {
		t0 := time.Now()
		bins := filepath.Join(work, "bin-"+arch)
		if err := build(repo, bins, arch, o.pkgs); err != nil {
			return false, err
		}
		initrd := filepath.Join(work, "initramfs-"+arch+".cpio")
		var trees []string
		if o.lab {
			trees = labTrees(o.cache, runs, arch)
		}
		if err := writeInitramfs(initrd, repo, bins, bb, makePlan(o, machines[arch]), trees...); err != nil {
			return false, err
		}
		initrds[arch] = initrd
		fi, _ := os.Stat(initrd)
		fmt.Fprintf(os.Stderr, "vm: %s initramfs %d MiB built in %.0fs\n", arch, fi.Size()>>20, time.Since(t0).Seconds())
	}
	hostBins := filepath.Join(work, "bin-"+runtime.GOARCH)
	if _, ok := busyboxes[runtime.GOARCH]; !ok && o.host && o.e2e {
		if err := build(repo, hostBins, runtime.GOARCH, nil); err != nil {
			return false, err
		}
	}

	for _, r := range runs {
		switch {
		case r.k == nil: // not fetched: r.bootErr says why
		case ctx.Err() != nil:
			r.bootErr = errors.New("interrupted before booting")
		default:
			arch := r.entry.arch()
			if err := bootKernel(ctx, r, initrds[arch], machines[arch], chooseAccel(o.accel, arch), o); err != nil {
				return false, err
			}
		}
	}
	var hostRes *hostResult
	if o.host && o.e2e && ctx.Err() == nil {
		dir := filepath.Join(o.out, "host")
		if err := os.RemoveAll(dir); err != nil {
			return false, fmt.Errorf("clearing %s: %w", dir, err)
		}
		hostRes = runHostE2E(ctx, hostBins, dir)
	}
	ok := report(os.Stdout, runs, hostRes, o)
	if o.lab {
		oomLines(os.Stdout, runs)
	}
	if o.docs != "" {
		if err := writeDocs(o.docs, runs, hostRes, o); err != nil {
			return false, err
		}
	}
	if o.lab && o.labDocs != "" {
		if err := writeLabDocs(o.labDocs, runs, o, time.Since(start)); err != nil {
			return false, err
		}
	}
	fmt.Printf("vm: results in %s\n", o.out)
	return ok, nil
}

// kernelArchs are the architectures of the entries, in order.
func kernelArchs(entries []kernelEntry) []string {
	var out []string
	for _, e := range entries {
		if !slices.Contains(out, e.arch()) {
			out = append(out, e.arch())
		}
	}
	return out
}

// fetchKernels fetches every kernel and, for each architecture with a
// fetched kernel, busybox-static (from the source of that architecture's
// first entry), then prunes the cache. It returns a run per entry, in
// -kernel order, and busybox's binary per architecture; a kernel that
// cannot be fetched fails its own run, not the others. Two entries that
// boot the same release would share a results directory and are an
// error.
func fetchKernels(cache string, host *aptSource, entries []kernelEntry) ([]*runResult, map[string]string, error) {
	var runs []*runResult
	apts := map[string]*aptSource{"": host} // by suite and architecture
	bbSource := map[string]*aptSource{}     // by architecture
	releases := map[string]kernelEntry{}
	var keep []string
	complete := true
	for _, e := range entries {
		key := e.suite
		if e.suite != "" {
			key += "/" + e.arch()
		}
		a, ok := apts[key]
		if !ok {
			var err error
			if a, err = suiteApt(cache, e.suite, e.arch()); err != nil {
				return nil, nil, err
			}
			apts[key] = a
		}
		r := &runResult{entry: e, kernel: e.String(), pkg: e.pkg}
		runs = append(runs, r)
		k, err := fetchKernel(cache, a, e)
		if err != nil {
			r.bootErr = err
			complete = false
			continue
		}
		if prev, ok := releases[k.release]; ok {
			return nil, nil, fmt.Errorf("-kernel: %s and %s both boot %s", prev, e, k.release)
		}
		releases[k.release] = e
		r.k, r.kernel, r.pkg, r.distro = k, k.release, k.pkg, k.distro
		keep = append(keep, k.deb)
		if _, ok := bbSource[e.arch()]; !ok {
			bbSource[e.arch()] = a
		}
	}
	busyboxes := map[string]string{}
	for arch, a := range bbSource {
		bb, bbdeb, err := busybox(cache, a)
		if err != nil {
			return nil, nil, err
		}
		busyboxes[arch] = bb
		keep = append(keep, bbdeb)
	}
	// After a failed fetch, keep what a later run may fall back on.
	if complete {
		prune(cache, keep...)
	}
	return runs, busyboxes, nil
}

// bootKernel boots r's kernel with the initramfs and fills r with what
// it reported; the logs go to OUT/RELEASE.
func bootKernel(ctx context.Context, r *runResult, initrd string, m machine, accel string, o options) error {
	k := r.k
	out := filepath.Join(o.out, k.release)
	// Results of an earlier run would be mistaken for this one's.
	if err := os.RemoveAll(out); err != nil {
		return fmt.Errorf("clearing %s: %w", out, err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	fmt.Fprintf(os.Stderr, "vm: booting %s (%s) with %s, %d MiB, %d CPUs\n", k.release, k.entry, accel, o.mem, o.cpus)
	cfg := vmConfig{
		machine: m, vmlinuz: k.vmlinuz, initramfs: initrd, memMiB: o.mem, cpus: o.cpus, accel: accel,
		console: filepath.Join(out, "console.log"), timeout: o.timeout, cmdline: o.cmdline,
	}
	if mode := cgroupMode(k, o.cgroup); mode != o.cgroup {
		// The initramfs (and its plan) is shared by the kernels of an
		// architecture: the override comes on the command line.
		fmt.Fprintf(os.Stderr, "vm: %s has no cgroup v1 memory controller (CONFIG_MEMCG_V1): cgroup %s\n", k.release, mode)
		cfg.cmdline = strings.TrimSpace(cfg.cmdline + " " + proto.CgroupParam + "=" + mode)
	}
	var echo *os.File
	if o.verbose {
		echo = os.Stdout
	}
	r.accel, r.out, r.started, r.cgroup = accel, out, time.Now(), cgroupMode(k, o.cgroup)
	if o.lab {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("choosing a port for the lab's wire: %w", err)
		}
		cfg.extra = wireArgs(m, port)
		stop := startWire(port)
		defer func() { r.wire = stop() }()
	}
	r.stream, r.took, r.bootErr = boot(ctx, cfg, echo)
	if r.stream != nil {
		return saveStream(out, r.stream)
	}
	return nil
}

// makePlan lists the guest's steps: the end-to-end run first (the
// headline; a hanging test later cannot hide it), then one step per test
// binary, run in its package's directory.
func makePlan(o options, m machine) proto.Plan {
	if o.lab {
		return labPlan(o, m)
	}
	plan := proto.Plan{Cgroup: o.cgroup, Results: m.results}
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
			// cmd/memtrace's process tests run this memtrace: the guest
			// has no Go toolchain to build one.
			Env: []string{"MEMTRACE_BIN=/vm/bin/memtrace"},
			// The guest kills the binary shortly after its own timeout
			// had the chance to print the stuck goroutines.
			Timeout: o.testTimeout + 30*time.Second,
		})
	}
	return plan
}
