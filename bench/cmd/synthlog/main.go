// Command synthlog writes a synthetic kernel log of allocation failure
// reports to standard output, for measuring `memtrace doctor
// --kmsg-file` on logs too large to keep (docs/benchmarks.md):
//
//	go run ./bench/cmd/synthlog -reports 1000000 -distinct > /tmp/big.log
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/memtrace/memtrace/internal/testing/synthlog"
)

func main() {
	var opt synthlog.Options
	flag.IntVar(&opt.Reports, "reports", 1000000, "failure reports to write")
	flag.BoolVar(&opt.Distinct, "distinct", false, "give every report a task of its own (no two group together)")
	flag.BoolVar(&opt.MemInfo, "meminfo", false, "follow every report with a Mem-Info block")
	flag.Parse()
	if flag.NArg() > 0 || opt.Reports < 0 {
		fmt.Fprintln(os.Stderr, "usage: synthlog [-reports N] [-distinct] [-meminfo] > FILE")
		os.Exit(2)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	_, err := io.Copy(w, synthlog.New(opt))
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "synthlog: writing: %v\n", err)
		os.Exit(1)
	}
}
