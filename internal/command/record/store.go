package record

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/memtrace/memtrace/internal/command/capture"
)

// Incident files are named incident-<UTC time of the trigger>-<kind>.json,
// so that their names sort by time.
const (
	filePrefix = "incident-"
	fileSuffix = ".json"
	timeLayout = "20060102T150405.000Z"
)

// fileName names the incident file of a trigger.
func fileName(t Trigger) string {
	return filePrefix + t.Time.UTC().Format(timeLayout) + "-" + t.Kind + fileSuffix
}

// isIncident reports whether a directory entry is an incident file
// (temporary files start with a dot).
func isIncident(name string) bool {
	return strings.HasPrefix(name, filePrefix) && strings.HasSuffix(name, fileSuffix)
}

// isTemp reports whether name is a temporary file the capture writer made
// for an incident file ("." + name + ".*.tmp").
func isTemp(name string) bool {
	return strings.HasPrefix(name, "."+filePrefix) && strings.HasSuffix(name, ".tmp")
}

// prepareDir creates dir if needed and removes the temporary files of
// writes that never finished (a recorder killed mid-write): the complete
// files are untouched.
func prepareDir(dir string) (removed int, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("creating %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && isTemp(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("removing %s: %w", e.Name(), err)
			}
			removed++
		}
	}
	return removed, nil
}

// writeFile writes doc as dir/name, whole or not at all (a temporary file
// synced and renamed), then syncs the directory so the rename survives a
// crash.
func writeFile(dir, name string, doc *capture.Document) (int64, error) {
	path := filepath.Join(dir, name)
	if err := capture.Write(path, nil, doc); err != nil {
		return 0, err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: some file systems refuse fsync on a directory
		d.Close()
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	return fi.Size(), nil
}

// bound removes the oldest incident files of dir until their sizes add up
// to at most max bytes; keep is never removed. It returns the names
// removed.
func bound(dir string, max int64, keep string) ([]string, error) {
	if max <= 0 {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	type file struct {
		name string
		size int64
	}
	var files []file
	var total int64
	for _, e := range entries {
		if !e.Type().IsRegular() || !isIncident(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		files = append(files, file{e.Name(), fi.Size()})
		total += fi.Size()
	}
	// Oldest first: by name (the trigger's time), which a clock set back
	// does not reorder among files of one recorder.
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var removed []string
	for _, f := range files {
		if total <= max {
			break
		}
		if f.name == keep {
			continue
		}
		if err := os.Remove(filepath.Join(dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("removing %s: %w", f.name, err)
		}
		total -= f.size
		removed = append(removed, f.name)
	}
	return removed, nil
}
