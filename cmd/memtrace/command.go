package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/pflag"
)

// command is one `memtrace <name>` subcommand. Flags are bound to a fresh
// value struct on every flagSet call, so help never shares state with a run.
type command struct {
	name, summary, long, usage string
	examples                   []string
	// bind registers the flags and returns the function that runs the
	// command with them once parsed.
	bind func(fs *pflag.FlagSet) func(args []string, stdout, stderr io.Writer) error
}

// registry holds the commands; each command's file registers itself in
// init, so adding a command touches only its own file.
var registry []func() *command

// displayOrder is the order of `memtrace --help`: the incident workflow.
var displayOrder = []string{"watch", "capture", "verify", "hugepages", "doctor", "serve", "record", "report"}

func register(c func() *command) { registry = append(registry, c) }

func commands() []*command {
	var out []*command
	for _, c := range registry {
		out = append(out, c())
	}
	rank := func(name string) int {
		for i, n := range displayOrder {
			if n == name {
				return i
			}
		}
		return len(displayOrder)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].name) < rank(out[j].name) })
	return out
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (c *command) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SortFlags = false
	c.bind(fs)
	return fs
}

func (c *command) execute(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // errors are reported once, by run
	runFn := c.bind(fs)
	if err := fs.Parse(args); err != nil {
		if err == pflag.ErrHelp {
			return err
		}
		return &usageError{cmd: c, msg: oneLine(err.Error())}
	}
	if err := checkNotEmpty(fs); err != nil {
		return err
	}
	return runFn(fs.Args(), stdout, stderr)
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}
