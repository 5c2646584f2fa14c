package mounts

import (
	"bufio"
	"io"
	"os"
	"strings"
)

// MountPoints lists, in mount-table order, where a filesystem of type
// fstype is mounted in this process's mount namespace. It reads the table
// rather than probing paths: a stat of /sys/kernel/debug/tracing makes
// debugfs mount tracefs there, a mount nobody asked for and none removes.
func MountPoints(fstype string) []string {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	return mountPoints(f, fstype)
}

func mountPoints(r io.Reader, fstype string) []string {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == fstype {
			out = append(out, Unescape(fields[1]))
		}
	}
	return out
}
