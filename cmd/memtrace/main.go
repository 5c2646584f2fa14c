// Command memtrace traces page-allocation failures, allocator
// fragmentation and huge-page requests with CO-RE eBPF programs.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/memtrace/memtrace/internal/present/text"
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
		return mainUsageError(stderr, "no command given")
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 2 {
			return mainUsageError(stderr, fmt.Sprintf("%s: unexpected argument %q", args[0], args[2]))
		}
		if len(args) > 1 {
			cmd := findCommand(args[1])
			if cmd == nil {
				return mainUsageError(stderr, fmt.Sprintf("unknown command %q", args[1]))
			}
			printCommandUsage(stdout, cmd)
			return exitOK
		}
		printMainUsage(stdout)
		return exitOK
	case "-v", "--version", "version":
		if len(args) > 1 {
			return mainUsageError(stderr, fmt.Sprintf("%s: unexpected argument %q", args[0], args[1]))
		}
		fmt.Fprintf(stdout, "memtrace %s\n", version)
		return exitOK
	}
	cmd := findCommand(args[0])
	if cmd == nil {
		return mainUsageError(stderr, fmt.Sprintf("unknown command %q", args[0]))
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
		fmt.Fprintf(stderr, "memtrace %s: %s\n\n", cmd.name, safeLine(ue.msg))
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

// mainUsageError reports a mistake outside any command: one line, then
// the main usage, exit 2.
func mainUsageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "memtrace: %s\n\n", safeLine(msg))
	printMainUsage(stderr)
	return exitUsage
}

// safeLine keeps a usage error on one line and the terminal safe: our
// messages quote what was typed (%q), but pflag's name an unknown flag or
// a bad syntax as typed, control characters included.
func safeLine(msg string) string {
	if strings.ContainsFunc(msg, text.Unsafe) {
		return text.Escape(msg)
	}
	return msg
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
