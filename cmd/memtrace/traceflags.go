package main

import (
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/memtrace/memtrace/internal/event"
	"github.com/memtrace/memtrace/internal/probe/loader"
)

// traceFlags are the probe and filter flags shared by the tracing commands
// (capture, watch, serve), defined and checked here once.
type traceFlags struct {
	fs          *pflag.FlagSet
	signals     []event.Signal
	allocHook   string
	pid         uint32
	comm        string
	cgroup      string
	sampleFirst uint32
	readyFile   string
	disable     string
}

func (f *traceFlags) register(fs *pflag.FlagSet) {
	f.fs = fs
	f.signals = event.DefaultSignals
	f.allocHook = "auto"
	f.sampleFirst = 64
	fs.Var(signalsValue{&f.signals}, "signals", "signals to trace: "+joinSignals(event.AllSignals)+" (comma-separated)")
	fs.Var(choiceValue{&f.allocHook, []string{"auto", "tp_btf", "tracepoint", "fexit"}}, "alloc-hook", "hook for allocation failures: auto (fexit where permitted, else tp_btf, else tracepoint), or only fexit, tp_btf or tracepoint")
	fs.Uint32Var(&f.pid, "pid", 0, "only this process (tgid)")
	fs.StringVar(&f.comm, "comm", "", "only tasks with this command name (exact, up to 15 characters)")
	fs.StringVar(&f.cgroup, "cgroup", "", "only tasks in this cgroup (path, v1 memory or v2)")
	fs.Uint32Var(&f.sampleFirst, "sample-first", 64, "events sent per (process, order, flags, context) before sampling; 0 sends all (counts are always exact)")
	fs.StringVar(&f.readyFile, "ready-file", "", "create this file once every probe is attached, and remove it at exit (it must not exist: never overwritten)")
	fs.StringVar(&f.disable, "disable-hooks", "", "hook types not to use, to force a fallback: tp_btf, tracepoint, fexit (comma-separated)")
}

func joinSignals(sigs []event.Signal) string {
	names := make([]string, len(sigs))
	for i, s := range sigs {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// loaderConfig checks the flags and turns them into a loader.Config. It is
// the last check of every tracing command: what follows is privileged.
func (f *traceFlags) loaderConfig() (loader.Config, error) {
	cfg := loader.DefaultConfig()
	cfg.Signals = f.signals
	cfg.AllocHook = f.allocHook
	cfg.SampleFirst = f.sampleFirst
	if f.fs.Changed("pid") {
		if err := checkPid(int64(f.pid)); err != nil {
			return cfg, err
		}
		cfg.Pid = f.pid
	}
	if f.comm != "" {
		if err := checkComm(f.comm); err != nil {
			return cfg, err
		}
		cfg.Comm = f.comm
	}
	disabled, err := loader.ParseHookTypes(f.disable)
	if err != nil {
		return cfg, usagef("--disable-hooks: %v", err)
	}
	if err := checkHooksLeft(cfg.Signals, f.allocHook, disabled); err != nil {
		return cfg, err
	}
	cfg.DisableHooks = disabled
	if f.cgroup != "" {
		id, err := checkCgroup(f.cgroup)
		if err != nil {
			return cfg, err
		}
		cfg.CgroupID = id
	}
	return cfg, beforeWork()
}

// checkHooksLeft rejects a --disable-hooks that leaves a signal asked for
// nothing to attach with (--alloc-hook fexit --disable-hooks fexit, or
// every hook type): the loader would only find out after loading, with a
// report per hook.
func checkHooksLeft(signals []event.Signal, allocHook string, disabled []string) error {
	if len(disabled) == 0 {
		return nil
	}
	if allocHook != "auto" && slices.Contains(disabled, allocHook) && slices.Contains(signals, event.SignalAlloc) {
		return usagef("--alloc-hook %s is disabled by --disable-hooks %s", allocHook, strings.Join(disabled, ","))
	}
	for _, sig := range signals {
		types, err := loader.SignalHookTypes(sig, allocHook)
		if err != nil {
			return usagef("%v", err)
		}
		if !slices.ContainsFunc(types, func(t string) bool { return !slices.Contains(disabled, t) }) {
			return usagef("--disable-hooks %s leaves %s no hook (it has %s): leave one, or choose --signals", strings.Join(disabled, ","), sig, strings.Join(types, ", "))
		}
	}
	return nil
}
