// Package mounts holds what memtrace needs to read the kernel's mount
// tables (/proc/mounts, /proc/PID/mountinfo) beyond what procfs offers.
package mounts

import (
	"strconv"
	"strings"
)

// Unescape undoes the octal escapes the kernel writes in mount paths
// (\040 space, \011 tab, \012 newline, \134 backslash), so a mount point
// such as "/mnt/huge pages" is found as written.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
