// Command guest is the init (PID 1) of memtrace's test VM. It mounts what
// a Debian host has mounted (proc, sys, cgroups, tracefs, bpffs, /dev/shm,
// hugetlbfs), runs the steps of the plan the host put in the initramfs,
// streams their output and exit codes on the results serial port (see
// package proto), and powers the machine off, also when something fails:
// the VM must never be left running.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/memtrace/memtrace/test/vm/internal/proto"
)

func main() {
	// A panic in PID 1 would panic the kernel; power off cleanly instead.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "guest: panic: %v\n%s", r, debug.Stack())
		}
		powerOff()
	}()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "guest:", err)
	}
}

func run() error {
	// Messages of this program go to the kernel console until the
	// results port, which the plan names, is open.
	if err := mountAll(); err != nil {
		return err
	}
	// busybox's applets are linked here, by the guest's own busybox: the
	// host cannot run another architecture's binary to list them.
	if b, err := exec.Command("/bin/busybox", "--install", "-s", "/bin").CombinedOutput(); err != nil {
		return fmt.Errorf("installing busybox's applets: %v: %s", err, b)
	}
	var plan proto.Plan
	b, err := os.ReadFile(proto.PlanPath)
	if err != nil {
		return fmt.Errorf("reading the plan: %w", err)
	}
	if err := json.Unmarshal(b, &plan); err != nil {
		return fmt.Errorf("decoding the plan: %w", err)
	}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if v, ok := strings.CutPrefix(f, proto.CgroupParam+"="); ok {
				plan.Cgroup = v
			}
		}
	}
	port := plan.Results
	if port == "" {
		port = "/dev/ttyS1"
	}
	out, err := openResults(port)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := setupCgroups(plan.Cgroup); err != nil {
		fmt.Fprintf(out, "%sinfo setup_error=%q\n", proto.Marker, err.Error())
		return err
	}
	fmt.Fprintf(out, "%sinfo %s\n", proto.Marker, strings.Join(info(plan), " "))
	for _, st := range plan.Steps {
		runStep(out, st)
	}
	fmt.Fprintf(out, "%sdone\n", proto.Marker)
	return nil
}

// info describes the guest: kernel, how long it took to get here, memory.
func info(plan proto.Plan) []string {
	var u unix.Utsname
	unix.Uname(&u)
	kv := []string{
		"kernel=" + unix.ByteSliceToString(u.Release[:]),
		"cgroup=" + plan.Cgroup,
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			kv = append(kv, "uptime_at_init="+f[0])
		}
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		kv = append(kv, fmt.Sprintf("mem_mib=%d", uint64(si.Totalram)*uint64(si.Unit)>>20))
	}
	if b, err := os.ReadFile("/sys/kernel/security/lockdown"); err == nil {
		kv = append(kv, "lockdown="+strings.ReplaceAll(strings.TrimSpace(string(b)), " ", ","))
	}
	kv = append(kv, "time="+time.Now().UTC().Format(time.RFC3339))
	return kv
}

// powerOff syncs and powers the machine off; qemu runs with -no-reboot, so
// if this fails and PID 1 exits, the kernel panic (panic=-1) ends qemu too.
func powerOff() {
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	os.Exit(1)
}
