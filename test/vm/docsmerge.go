package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// mergeDocs is docs/kernels.md after a run that booted only some of the
// kernels it lists (-kernel): fresh, this run's file, with the rows of
// every kernel it did not boot kept from old, so that one kernel can be
// re-run alone without a hand edit or dropping the others. The kept rows
// stay where they were, the run's rows replace those of the same kernel
// or, for a kernel new to the file, come after the other guests. A run
// with the host (-host) replaces the host's rows, whatever its kernel.
// The intro names every kernel of the merged table and says which rows
// this run wrote. Without kept rows it returns fresh.
func mergeDocs(old, fresh, kernelFlag string) string {
	oldTabs, freshTabs := tableRows(old), tableRows(fresh)
	if len(oldTabs) != 2 || len(freshTabs) != 2 {
		return fresh // not a file this program wrote: nothing to keep
	}
	ran := map[string]bool{}
	var ranGuests []string
	freshHost := false
	for _, r := range freshTabs[0] {
		k, where := rowCells(r)
		ran[k] = true
		if where == "CI host" {
			freshHost = true
		} else {
			ranGuests = append(ranGuests, k)
		}
	}
	oldHosts := map[string]bool{}
	for _, r := range oldTabs[0] {
		if k, where := rowCells(r); where == "CI host" {
			oldHosts[k] = true
		}
	}
	kept := false
	merged := make([][]string, 2)
	for t := range 2 {
		emitted := map[string]bool{}
		var guests, hosts []string
		for _, r := range oldTabs[t] {
			k, _ := rowCells(r)
			switch {
			case ran[k]:
				if !emitted[k] {
					emitted[k] = true
					if oldHosts[k] {
						hosts = append(hosts, rowsOf(freshTabs[t], k)...)
					} else {
						guests = append(guests, rowsOf(freshTabs[t], k)...)
					}
				}
			case oldHosts[k] && freshHost:
				// This run's host replaces the old host.
			case oldHosts[k]:
				hosts = append(hosts, r)
			default:
				guests = append(guests, r)
				kept = true
			}
		}
		for _, r := range freshTabs[t] {
			k, _ := rowCells(r)
			if emitted[k] {
				continue
			}
			if slices.Contains(ranGuests, k) {
				guests = append(guests, r)
			} else {
				hosts = append(hosts, r)
			}
		}
		merged[t] = append(guests, hosts...)
	}
	if !kept {
		return fresh
	}
	i := strings.Index(fresh, "\nHooks memtrace chose")
	if i < 0 {
		return fresh
	}
	var where []string
	for _, r := range merged[0] {
		k, w := rowCells(r)
		where = append(where, k+"\x00"+w)
	}
	note := fmt.Sprintf(" The last run (`-kernel %s`) booted %s only; the rows of the other guest kernels are kept from an earlier run.",
		kernelFlag, joinAnd(ranGuests))
	doc := "# Supported kernels\n\n" + wrap(strings.TrimSuffix(introFromRows(where), "\n")+note, 72) + fresh[i:]
	return replaceTableRows(doc, merged)
}

// tableRows returns the body rows (no header, no separator) of each
// Markdown table of doc.
func tableRows(doc string) [][]string {
	var tabs [][]string
	in := false
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(l, "|") {
			in = false
			continue
		}
		if !in {
			in = true
			tabs = append(tabs, nil)
			continue // the header
		}
		if strings.HasPrefix(l, "|---") {
			continue
		}
		tabs[len(tabs)-1] = append(tabs[len(tabs)-1], l)
	}
	return tabs
}

// replaceTableRows puts rows[i] as the body of doc's i-th table.
func replaceTableRows(doc string, rows [][]string) string {
	var out []string
	t, in := -1, false
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(l, "|") {
			in = false
			out = append(out, l)
			continue
		}
		if !in {
			in = true
			t++
			out = append(out, l)
			continue
		}
		if strings.HasPrefix(l, "|---") {
			out = append(out, l)
			if t < len(rows) {
				out = append(out, rows[t]...)
			}
		}
		// body rows of doc are dropped: rows[t] replaced them
	}
	return strings.Join(out, "\n")
}

// rowCells returns a row's first two cells: the kernel and the second
// column (where it ran, in the first table).
func rowCells(row string) (string, string) {
	cells := strings.Split(row, "|")
	if len(cells) < 3 {
		return "", ""
	}
	return strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
}

func rowsOf(rows []string, kernel string) []string {
	var out []string
	for _, r := range rows {
		if k, _ := rowCells(r); k == kernel {
			out = append(out, r)
		}
	}
	return out
}

var whereRe = regexp.MustCompile(`^qemu \([^)]*\), (?:(Debian \d+) )?package (\S+),`)

// introFromRows is intro for the rows of a first table, "kernel\x00where"
// each: the same sentence, from what the rows say.
func introFromRows(rows []string) string {
	var guests []string
	host := false
	for _, r := range rows {
		kernel, where, _ := strings.Cut(r, "\x00")
		if where == "CI host" {
			host = true
			continue
		}
		arch := ""
		if strings.HasSuffix(kernel, "-arm64") {
			arch = " on arm64"
		}
		m := whereRe.FindStringSubmatch(where)
		switch {
		case m != nil && m[1] != "":
			guests = append(guests, m[1]+"'s "+shortVersion(kernel)+arch)
		case m != nil:
			guests = append(guests, shortVersion(kernel)+arch+" ("+m[2]+")")
		default:
			guests = append(guests, kernel)
		}
	}
	return introText(guests, host)
}
