package main

import (
	"encoding/json"
	"io"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/command/hugepages"
)

func init() { register(hugepagesCommand) }

func hugepagesCommand() *command {
	return &command{
		name:    "hugepages",
		summary: "huge page pools, who uses them, SysV segments and pool sizing (no tracing)",
		long: "Show, without tracing, whether this host's shared memory is on huge pages:\n" +
			"every pool with the memory it wastes (never used = Free - Rsvd), the processes\n" +
			"that map huge pages or large shared memory (from smaps), the System V segments\n" +
			"and who attaches them, the vm.nr_hugepages and memlock limit the segments need,\n" +
			"and the page-table cost of the same memory on 4 KiB and on huge pages.\n" +
			"Without root only your own processes can be read.",
		usage: "hugepages [--plan SIZE --processes N] [--json]",
		examples: []string{
			"sudo memtrace hugepages",
			"memtrace hugepages --plan 64G --processes 1000",
			"sudo memtrace hugepages --json | jq '.sysv_segments[] | select(.on_huge_pages == false)'",
		},
		bind: func(fs *pflag.FlagSet) func([]string, io.Writer, io.Writer) error {
			var asJSON bool
			var plan, minSize string
			var processes int
			var procRoot, sysRoot string
			fs.BoolVar(&asJSON, "json", false, "write JSON instead of tables")
			fs.StringVar(&plan, "plan", "", "also size the pool for this much shared memory (64G, 512M) before the database runs")
			fs.IntVar(&processes, "processes", 100, "database processes for --plan (each adds 20 KiB to the pool, and page tables)")
			fs.StringVar(&minSize, "min-size", "64M", "list shared mappings of at least this size even on base pages")
			fs.StringVar(&procRoot, "proc-root", "/proc", "procfs mount (for tests)")
			fs.StringVar(&sysRoot, "sys-root", "/sys", "sysfs mount (for tests)")
			fs.MarkHidden("proc-root")
			fs.MarkHidden("sys-root")
			return func(args []string, stdout, stderr io.Writer) error {
				if len(args) > 0 {
					return usagef("unexpected argument %q", args[0])
				}
				opts := hugepages.Options{ProcRoot: procRoot, SysRoot: sysRoot, PlanProcesses: processes}
				var err error
				if opts.MinSharedBytes, err = hugepages.ParseSize(minSize); err != nil {
					return usagef("--min-size: %v", err)
				}
				if plan != "" {
					if opts.PlanBytes, err = hugepages.ParseSize(plan); err != nil || opts.PlanBytes == 0 {
						return usagef("--plan %q: want a size such as 64G", plan)
					}
				}
				if fs.Changed("processes") && plan == "" {
					return usagef("--processes is for --plan: give --plan SIZE too")
				}
				if err := opts.Validate(); err != nil {
					return usagef("%v", err)
				}
				if err := beforeWork(); err != nil {
					return err
				}
				r, err := hugepages.Collect(opts)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(r)
				}
				return hugepages.WriteText(stdout, r)
			}
		},
	}
}
