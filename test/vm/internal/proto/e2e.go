package proto

// Summary is what test/vm/e2e found for one capture variant, written as
// e2e-<variant>.json next to the capture; the host runner checks the hooks
// against what each kernel should choose and builds docs/kernels.md.
type Summary struct {
	Variant string   // "default", "fexit", …
	Flags   []string // memtrace capture flags of the variant
	Kernel  string   // the capture's host.kernel_release
	Hooks   []Hook
	Checks  []Check
}

// Hook is one signal's hook as the capture's hooks section reports it.
type Hook struct {
	Signal   string
	Hook     string
	Attached bool
	// Companions are the attached optional hooks (kprobe/warn_alloc).
	Companions []string
	// Rejected are the hooks tried first and the companions that did not
	// attach, with the reason.
	Rejected []string
}

// Check is one end-to-end assertion.
type Check struct {
	Name    string
	OK      bool
	Skipped bool // could not be provoked here (e.g. needs cgroup v1)
	Detail  string
}

// Passed reports whether no check failed.
func (s Summary) Passed() bool {
	for _, c := range s.Checks {
		if !c.OK && !c.Skipped {
			return false
		}
	}
	return true
}
