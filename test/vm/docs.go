package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

// The README's "Supported kernels" table sits between these markers; it is
// the first table of docs/kernels.md, copied by writeDocs.
const (
	readmeBegin = "<!-- supported-kernels:begin (go run ./test/vm -docs docs/kernels.md) -->\n"
	readmeEnd   = "<!-- supported-kernels:end -->\n"
)

// writeDocs writes docs/kernels.md from this run's results, so the table
// says only what was seen, and copies its first table into the README
// beside the docs directory.
//
// Rows of kernels this run did not boot are kept from the file
// (mergeDocs), so -kernel can re-run one kernel alone.
func writeDocs(path string, runs []*runResult, h *hostResult, o options) error {
	doc := kernelsDoc(runs, h, o)
	if old, err := os.ReadFile(path); err == nil {
		doc = mergeDocs(string(old), doc, o.kernel)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		return err
	}
	readme := filepath.Join(filepath.Dir(filepath.Dir(path)), "README.md")
	b, err := os.ReadFile(readme)
	if err != nil {
		return fmt.Errorf("updating the README's supported kernels: %w", err)
	}
	out, err := replaceSection(b, firstTable(doc))
	if err != nil {
		return fmt.Errorf("updating %s: %w", readme, err)
	}
	return os.WriteFile(readme, out, 0o644)
}

// firstTable returns the lines of doc's first Markdown table.
func firstTable(doc string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(doc, "\n") {
		if strings.HasPrefix(line, "|") {
			b.WriteString(line)
		} else if b.Len() > 0 {
			break
		}
	}
	return b.String()
}

// readmeSection returns what the README holds between the markers.
func readmeSection(readme []byte) (string, error) {
	_, rest, ok := bytes.Cut(readme, []byte(readmeBegin))
	if !ok {
		return "", errors.New("no supported-kernels begin marker")
	}
	sec, _, ok := bytes.Cut(rest, []byte(readmeEnd))
	if !ok {
		return "", errors.New("no supported-kernels end marker")
	}
	return string(sec), nil
}

// replaceSection puts table between the README's markers.
func replaceSection(readme []byte, table string) ([]byte, error) {
	old, err := readmeSection(readme)
	if err != nil {
		return nil, err
	}
	return bytes.Replace(readme, []byte(readmeBegin+old+readmeEnd), []byte(readmeBegin+table+readmeEnd), 1), nil
}

func kernelsDoc(runs []*runResult, h *hostResult, o options) string {
	var b strings.Builder
	b.WriteString("# Supported kernels\n\n")
	b.WriteString(wrap(intro(runs, h), 72))
	b.WriteString(`
Hooks memtrace chose with its default configuration:

| kernel | where | allocation failures | logged failures | fragmentation | huge-page requests | tested |
|---|---|---|---|---|---|---|
`)
	guest := make([][]proto.Summary, len(runs))
	for i, r := range runs {
		if r.stream != nil {
			guest[i] = summaries(r.stream.Files)
		}
		distro := r.distro
		if distro == "" {
			distro = "Debian" // the host's apt sources
		}
		where := fmt.Sprintf("qemu (%s), %s package %s, cgroup %s", r.accel, distro, r.pkg, r.cgroup)
		b.WriteString(row(r.kernel, where, guest[i], guestTested(r)))
	}
	if h != nil {
		b.WriteString(row(h.kernel, "CI host", h.summaries, "`make test` (the whole suite); e2e "+e2eTested(h.summaries)))
	}
	b.WriteString(`
Every variant below is a ` + "`memtrace capture`" + ` running at the same time as the
others, on the same provoked events (test/vm/e2e): allocation failures, a
warn_alloc report, extfrag events, huge-page requests that succeed, fail
and fall back. Each checks memtrace's counts against provoke's independent
tracefs counters.

| kernel | variant | allocation failures | fragmentation | huge-page requests | checks |
|---|---|---|---|---|---|
`)
	variants := func(kernel string, sums []proto.Summary) {
		for _, s := range sums {
			pass, fail, skip := checkCounts(s)
			checks := fmt.Sprintf("%d passed", pass)
			if fail > 0 {
				checks += fmt.Sprintf(", **%d failed**", fail)
			}
			if skip > 0 {
				checks += fmt.Sprintf(", %d skipped", skip)
			}
			flags := strings.Join(s.Flags, " ")
			if flags == "" {
				flags = "(none)"
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s |\n", kernel, flags,
				cell(hookOf(s, "alloc")), cell(hookOf(s, "extfrag")), cell(hookOf(s, "hugetlb")), checks)
		}
	}
	for i, r := range runs {
		variants(r.kernel, guest[i])
	}
	if h != nil {
		variants(h.kernel, h.summaries)
	}
	return b.String()
}

func row(kernel, where string, sums []proto.Summary, tested string) string {
	var def proto.Summary
	for _, s := range sums {
		if s.Variant == "default" {
			def = s
		}
	}
	alloc := hookOf(def, "alloc")
	logged := "—"
	if len(alloc.Companions) > 0 {
		logged = "`" + strings.Join(alloc.Companions, "`, `") + "`"
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |\n", kernel, where,
		cell(alloc), logged, cell(hookOf(def, "extfrag")), cell(hookOf(def, "hugetlb")), tested)
}

func cell(h proto.Hook) string {
	if !h.Attached {
		return "none (" + h.Hook + ")"
	}
	return "`" + h.Hook + "`"
}

// guestTested lists the test binaries with their counts.
func guestTested(r *runResult) string {
	if r.stream == nil {
		return "did not run"
	}
	var parts []string
	var sums []proto.Summary
	for _, res := range r.stream.Results {
		if res.Name == "e2e" {
			sums = summaries(r.stream.Files)
			continue
		}
		c := countTests(res.Output)
		p := fmt.Sprintf("%s %d/%d", res.Name, c.pass, c.pass+c.fail)
		if c.fail > 0 {
			p += " (**" + strings.Join(c.failed, ", ") + " failed**)"
		}
		parts = append(parts, p)
	}
	return "tests passed: " + strings.Join(parts, ", ") + "; e2e " + e2eTested(sums)
}

func e2eTested(sums []proto.Summary) string {
	pass, fail := 0, 0
	for _, s := range sums {
		p, f, _ := checkCounts(s)
		pass, fail = pass+p, fail+f
	}
	out := fmt.Sprintf("%d variants, %d checks passed", len(sums), pass)
	if fail > 0 {
		out += fmt.Sprintf(", **%d failed**", fail)
	}
	return out
}

// intro says which kernels the run tested and how the file came about.
func intro(runs []*runResult, h *hostResult) string {
	var guests []string
	for _, r := range runs {
		if r.k == nil {
			continue // never booted
		}
		arch := ""
		if a := r.entry.arch(); a != "amd64" {
			arch = " on " + a
		}
		if r.distro != "" {
			guests = append(guests, r.distro+"'s "+shortVersion(r.kernel)+arch)
		} else {
			guests = append(guests, shortVersion(r.kernel)+arch+" ("+r.pkg+")")
		}
	}
	return introText(guests, h != nil)
}

// introText is intro's sentence for these guests, and the host's kernel
// when host.
func introText(guests []string, host bool) string {
	tested := "memtrace is tested on "
	if host {
		tested += "the CI host's kernel and on "
	}
	return tested + joinAnd(guests) + ", booted under qemu by `make test-kernels` (test/vm). " +
		"This file is written by `go run ./test/vm -docs docs/kernels.md` from the results of such a run; " +
		"do not edit the tables by hand.\n"
}

// joinAnd joins an English list: "a", "a and b", "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// wrap breaks a paragraph into lines of at most width characters (longer
// words stay whole), so the generated text reads like the hand-written.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(text) {
		switch {
		case n == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	if n > 0 {
		b.WriteByte('\n')
	}
	return b.String()
}
