// Command memtrace traces page-allocation failures, allocator
// fragmentation and huge-page requests with CO-RE eBPF programs.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit statuses: 2 is reserved for usage errors so scripts can tell a
// mistake in the command line from a failure on the host.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a mistake in the command line: exit 2 with usage.
type usageError struct {
	cmd *command
	msg string
}

func (e *usageError) Error() string { return e.msg }

// exitError carries a specific exit status (for verdict-style commands).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printMainUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			cmd := findCommand(args[1])
			if cmd == nil {
				fmt.Fprintf(stderr, "memtrace: unknown command %q\n\n", args[1])
				printMainUsage(stderr)
				return exitUsage
			}
			printCommandUsage(stdout, cmd)
			return exitOK
		}
		printMainUsage(stdout)
		return exitOK
	case "-v", "--version", "version":
		fmt.Fprintf(stdout, "memtrace %s\n", version)
		return exitOK
	}
	cmd := findCommand(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "memtrace: unknown command %q\n\n", args[0])
		printMainUsage(stderr)
		return exitUsage
	}
	err := cmd.execute(args[1:], stdout, stderr)
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case isBrokenStdout(err):
		// The reader had enough (`| head`): nothing to report, and the
		// terminal, if any, is not where the output was going.
		return exitBrokenPipe
	case errors.Is(err, pflag.ErrHelp):
		printCommandUsage(stdout, cmd)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "memtrace %s: %s\n\n", cmd.name, ue.msg)
		printCommandUsage(stderr, cmd)
		return exitUsage
	case errors.As(err, &ee):
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(stderr, "memtrace %s: %s\n", cmd.name, ee.err)
		}
		return ee.code
	default:
		fmt.Fprintf(stderr, "memtrace %s: %s\n", cmd.name, err)
		return exitFail
	}
}

func printMainUsage(w io.Writer) {
	fmt.Fprintf(w, "memtrace traces page-allocation failures, fragmentation and huge-page requests.\n\n")
	fmt.Fprintf(w, "Usage:\n  memtrace <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n  %-10s %s\n", "help", "show a command's flags and examples", "version", "print the version")
	fmt.Fprintf(w, "\nRun 'memtrace help <command>' for a command's flags and examples.\n")
}

func printCommandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  memtrace %s\n", c.long, c.usage)
	fs := c.flagSet()
	if fs.HasFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", fs.FlagUsages())
	}
	if len(c.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n  %s\n", strings.Join(c.examples, "\n  "))
	}
}
