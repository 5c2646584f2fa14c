package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

func TestParseKernels(t *testing.T) {
	cases := []struct {
		in   string
		want []kernelEntry
		err  string
	}{
		{defaultKernels, []kernelEntry{{"bookworm", "linux-image-amd64"}, {"bullseye", "linux-image-amd64"}, {"trixie", "linux-image-amd64"}, {"bookworm", "linux-image-arm64"}}, ""},
		{"bullseye:linux-image-amd64", []kernelEntry{{"bullseye", "linux-image-amd64"}}, ""},
		// A bare package comes from the host's apt sources.
		{"linux-image-amd64", []kernelEntry{{"", "linux-image-amd64"}}, ""},
		{" bookworm:linux-image-6.1.0-56-amd64 , linux-image-amd64,", []kernelEntry{{"bookworm", "linux-image-6.1.0-56-amd64"}, {"", "linux-image-amd64"}}, ""},
		{"bookworm-backports:linux-image-amd64", []kernelEntry{{"bookworm-backports", "linux-image-amd64"}}, ""},
		{"", nil, "no kernel given"},
		{" , ", nil, "no kernel given"},
		{":linux-image-amd64", nil, "not a Debian suite"},
		{"Bookworm:linux-image-amd64", nil, "not a Debian suite"},
		{"bookworm:", nil, "not a package name"},
		{"bookworm:linux-image-amd64:amd64", nil, "not a package name"},
		{"bookworm:linux-image-amd64,bookworm:linux-image-amd64", nil, "listed twice"},
	}
	for _, c := range cases {
		got, err := parseKernels(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseKernels(%q) = %v, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("parseKernels(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	if s := (kernelEntry{"bullseye", "linux-image-amd64"}).String(); s != "bullseye:linux-image-amd64" {
		t.Errorf("String() = %q", s)
	}
}

func TestSuiteApt(t *testing.T) {
	cache := t.TempDir()
	a, err := suiteApt(cache, "bullseye", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(cache, "apt", "bullseye", "sources.list"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main\n",
		"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bullseye-security main\n",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("sources.list lacks %q:\n%s", want, b)
		}
	}
	opts := strings.Join(a.options(), " ")
	for _, want := range []string{
		"-o Dir::Etc::SourceList=" + filepath.Join(cache, "apt/bullseye/sources.list"),
		"-o Dir::Etc::SourceParts=/dev/null",
		"-o Dir::State::Lists=" + filepath.Join(cache, "apt/bullseye/lists"),
		"-o Dir::State::status=" + filepath.Join(cache, "apt/bullseye/status"),
		"-o Dir::Cache=" + filepath.Join(cache, "apt/bullseye/cache"),
	} {
		if !strings.Contains(opts, want) {
			t.Errorf("options lack %q: %s", want, opts)
		}
	}
	if o := hostApt().options(); o != nil {
		t.Errorf("host apt options %q, want none", o)
	}
	// Before apt-get update fetched the lists, the suite names the release.
	if r := a.release(); r != "Debian bullseye" {
		t.Errorf("release() = %q before update", r)
	}
	inRelease := "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nSuite: oldoldstable\nVersion: 11.11\nCodename: bullseye\nSHA256:\n 1 2 main/Version: x\n"
	p := filepath.Join(a.dir, "lists", "deb.debian.org_debian_dists_bullseye_InRelease")
	if err := os.WriteFile(p, []byte(inRelease), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := a.release(); r != "Debian 11" {
		t.Errorf("release() = %q, want Debian 11", r)
	}
}

// TestPrune: a run of one kernel keeps the .deb another entry resolved to;
// a newer resolution of the same entry makes the old .deb stale.
func TestPrune(t *testing.T) {
	cache := t.TempDir()
	touch := func(p string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old61 := "linux-image-6.1.0-55-amd64_6.1.150-1_amd64.deb"
	new61 := "linux-image-6.1.0-56-amd64_6.1.158-1_amd64.deb"
	k510 := "linux-image-5.10.0-46-amd64_5.10.262-1_amd64.deb"
	bb := "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"
	for _, d := range []string{old61, new61, k510, bb} {
		touch(filepath.Join(cache, "debs", d))
		touch(filepath.Join(cache, "unpacked", strings.TrimSuffix(d, ".deb"), ".unpacked"))
	}
	bookworm := kernelEntry{"bookworm", "linux-image-amd64"}
	if err := recordDeb(cache, bookworm, filepath.Join(cache, "debs", new61)); err != nil {
		t.Fatal(err)
	}
	if got := recordedDeb(cache, bookworm); got != new61 {
		t.Errorf("recordedDeb = %q, want %q", got, new61)
	}
	if got := recordedDeb(cache, kernelEntry{"bullseye", "linux-image-amd64"}); got != "" {
		t.Errorf("recordedDeb of an entry never resolved = %q", got)
	}
	// A 5.10-only run.
	prune(cache, filepath.Join(cache, "debs", k510), filepath.Join(cache, "debs", bb))
	for _, c := range []struct {
		deb  string
		kept bool
	}{{old61, false}, {new61, true}, {k510, true}, {bb, true}} {
		_, err := os.Stat(filepath.Join(cache, "debs", c.deb))
		_, uerr := os.Stat(filepath.Join(cache, "unpacked", strings.TrimSuffix(c.deb, ".deb")))
		if kept := err == nil; kept != c.kept || (uerr == nil) != c.kept {
			t.Errorf("%s: kept %v (unpacked %v), want %v", c.deb, kept, uerr == nil, c.kept)
		}
	}
}

func TestIntroAndWrap(t *testing.T) {
	runs := []*runResult{
		{k: &kernel{}, kernel: "6.1.0-56-amd64", distro: "Debian 12", pkg: "linux-image-6.1.0-56-amd64"},
		{k: &kernel{}, kernel: "5.10.0-46-amd64", distro: "Debian 11", pkg: "linux-image-5.10.0-46-amd64"},
		{k: &kernel{}, kernel: "6.1.0-40-amd64", pkg: "linux-image-6.1.0-40-amd64"},
		{kernel: "trixie:linux-image-amd64"}, // not fetched
		{k: &kernel{}, kernel: "6.1.0-57-arm64", distro: "Debian 12", pkg: "linux-image-6.1.0-57-arm64", entry: kernelEntry{"bookworm", "linux-image-arm64"}},
	}
	got := intro(runs, &hostResult{kernel: "6.18.44"})
	want := "memtrace is tested on the CI host's kernel and on Debian 12's 6.1, Debian 11's 5.10, 6.1 (linux-image-6.1.0-40-amd64) and Debian 12's 6.1 on arm64, booted under qemu"
	if !strings.HasPrefix(got, want) {
		t.Errorf("intro:\n%s\nwant prefix\n%s", got, want)
	}
	if got := intro(runs[1:2], nil); !strings.HasPrefix(got, "memtrace is tested on Debian 11's 5.10, booted") {
		t.Errorf("intro without host: %s", got)
	}
	w := wrap(got, 30)
	for _, l := range strings.Split(strings.TrimSuffix(w, "\n"), "\n") {
		if len(l) > 30 && strings.Contains(l, " ") {
			t.Errorf("line longer than 30: %q", l)
		}
	}
	if strings.Join(strings.Fields(w), " ") != strings.Join(strings.Fields(got), " ") {
		t.Errorf("wrap changed the words:\n%s", w)
	}
}

func e2eFiles(alloc string, companions ...string) map[string][]byte {
	s := proto.Summary{Variant: "default", Hooks: []proto.Hook{
		{Signal: "alloc", Hook: alloc, Attached: true, Companions: companions},
	}, Checks: []proto.Check{{Name: "alloc", OK: true}}}
	b, _ := json.Marshal(s)
	return map[string][]byte{"/tmp/e2e/e2e-default.json": b}
}

// TestReportAndDocsEveryKernel: every kernel gets a section, a hooks
// entry and rows in both tables; one failing kernel fails the run.
func TestReportAndDocsEveryKernel(t *testing.T) {
	ok := func(release, alloc string) *runResult {
		return &runResult{
			k: &kernel{}, kernel: release, pkg: "linux-image-" + release, distro: "Debian 12", accel: "tcg",
			entry: kernelEntry{"bookworm", "linux-image-amd64"},
			stream: &proto.Stream{
				Done:    true,
				Results: []proto.Result{{Name: "e2e"}, {Name: "internal/probe/tracefs", Output: "--- PASS: TestA (0.00s)\n"}},
				Files:   e2eFiles(alloc, "kprobe/warn_alloc"),
			},
		}
	}
	runs := []*runResult{ok("6.1.0-56-amd64", "fexit/__alloc_pages"), ok("5.10.0-46-amd64", "fexit/__alloc_pages_nodemask")}
	host := &hostResult{kernel: "6.18.44-fc", summaries: summaries(e2eFiles("fexit/__alloc_pages_noprof"))}
	var out bytes.Buffer
	if !report(&out, runs, host, options{cgroup: "v1"}) {
		t.Errorf("report failed:\n%s", out.String())
	}
	for _, want := range []string{
		"== memtrace on 6.1.0-56-amd64 (", "== memtrace on 5.10.0-46-amd64 (",
		"  6.1.0-56-amd64 (vm)\n", "  5.10.0-46-amd64 (vm)\n", "  6.18.44-fc (host)\n", "== PASS",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Count(out.String(), "== hooks chosen") != 1 {
		t.Errorf("want one hooks section:\n%s", out.String())
	}

	doc := kernelsDoc(runs, host, options{cgroup: "v1"})
	first := firstTable(doc)
	for _, k := range []string{"6.1.0-56-amd64", "5.10.0-46-amd64", "6.18.44-fc"} {
		if !strings.Contains(first, "| "+k+" |") {
			t.Errorf("first table lacks %s:\n%s", k, first)
		}
		if strings.Count(doc, "| "+k+" | `(none)` |") != 1 {
			t.Errorf("variants table lacks %s:\n%s", k, doc)
		}
	}

	// One kernel failing fails the run, and the verdict names it.
	runs[1].bootErr = errors.New("the VM did not finish")
	out.Reset()
	if report(&out, runs, host, options{cgroup: "v1"}) {
		t.Errorf("report passed with a failed kernel:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "== FAIL: 5.10.0-46-amd64") {
		t.Errorf("verdict does not name the failed kernel:\n%s", out.String())
	}
}

// Debian 13's 6.12 is built without cgroup v1's memory controller: its
// guest mounts cgroup v2 whatever -cgroup asks, read from the kernel's
// config beside its vmlinuz.
func TestCgroupMode(t *testing.T) {
	dir := t.TempDir()
	k := &kernel{release: "6.12.1-amd64", vmlinuz: filepath.Join(dir, "vmlinuz-6.12.1-amd64")}
	cfg := filepath.Join(dir, "config-6.12.1-amd64")
	for _, c := range []struct {
		config    string // "" for no config file
		want, got string
	}{
		{"", "v1", "v1"},
		{"CONFIG_MEMCG=y\nCONFIG_MEMCG_V1=y\n", "v1", "v1"},
		{"CONFIG_MEMCG=y\n# CONFIG_MEMCG_V1 is not set\n", "v1", "v2"},
		{"CONFIG_MEMCG=y\n# CONFIG_MEMCG_V1 is not set\n", "v2", "v2"},
		{"CONFIG_MEMCG=y\n", "v2", "v2"},
	} {
		os.Remove(cfg)
		if c.config != "" {
			if err := os.WriteFile(cfg, []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got := cgroupMode(k, c.want); got != c.got {
			t.Errorf("config %q, -cgroup %s: got %s, want %s", c.config, c.want, got, c.got)
		}
	}
}
