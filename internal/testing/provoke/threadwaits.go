package provoke

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// threadWaits says where each thread of a stuck child is, before it is
// killed: its state and the kernel function it sleeps in (wchan), and the
// innermost frames of its kernel stack where /proc shows them (root). A
// child that hangs once in many CI runs leaves only this behind.
func threadWaits(pid int) string {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tids, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, t := range tids {
		base := filepath.Join(dir, t.Name())
		state := "?"
		if b, err := os.ReadFile(filepath.Join(base, "stat")); err == nil {
			// The state follows the comm's closing parenthesis.
			if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
				state = string(b[i+2])
			}
		}
		wchan, _ := os.ReadFile(filepath.Join(base, "wchan"))
		line := fmt.Sprintf("%s %s %s", t.Name(), state, wchan)
		if b, err := os.ReadFile(filepath.Join(base, "stack")); err == nil {
			frames := strings.Fields(string(b))
			var names []string
			for _, f := range frames {
				if !strings.HasPrefix(f, "[<") {
					names = append(names, f)
				}
			}
			if len(names) > 6 {
				names = names[:6]
			}
			line += " [" + strings.Join(names, " ") + "]"
		}
		out = append(out, line)
	}
	return strings.Join(out, "; ")
}
