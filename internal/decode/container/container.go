// Package container tells, from a cgroup path, which container and which
// Kubernetes pod a task runs in. Container runtimes and the kubelet name
// their cgroups by fixed conventions, so the path alone is enough: no
// runtime socket or API server is asked, which keeps memtrace usable on a
// host whose runtime is the thing in trouble.
//
// Conventions recognised (see testdata/paths.txt for real samples):
//
//	kubelet, systemd driver   /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/…
//	kubelet, cgroupfs driver  /kubepods/burstable/pod<uid>/…
//	containerd (CRI)          cri-containerd-<id>.scope, or a bare <id> under cgroupfs
//	CRI-O                     crio-<id>.scope (crio-<id>.scope/container on cgroup v2), crio-conmon-<id>.scope
//	docker                    docker-<id>.scope, /docker/<id>
//	podman                    libpod-<id>.scope, libpod-conmon-<id>.scope
//	nerdctl                   nerdctl-<id>.scope
package container

import (
	"strings"

	"github.com/memtrace/memtrace/internal/event"
)

// Runtimes, as they appear in event.Container.Runtime.
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
	RuntimePodman     = "podman"
	RuntimeLXC        = "lxc"
)

// QoS classes of Kubernetes pods, as they appear in event.Container.QoS.
const (
	QoSGuaranteed = "guaranteed"
	QoSBurstable  = "burstable"
	QoSBestEffort = "besteffort"
)

// Parse reads a cgroup path, relative to its hierarchy's root
// ("/kubepods.slice/…", as internal/decode/cgroup's Resolver returns it) or absolute
// ("/sys/fs/cgroup/…"). The innermost container wins, so a container
// nested in another (kind, docker-in-docker) is named, not its host.
func Parse(path string) event.Container {
	// A line of /proc/<pid>/cgroup ("0::/…", "11:memory:/…"): keep the path.
	if !strings.HasPrefix(path, "/") {
		if i := strings.Index(path, ":/"); i >= 0 {
			path = path[i+1:]
		}
	}
	var info event.Container
	var segs []string
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		// containerd's systemd driver notation when systemd did not expand
		// it, "<slice>:<prefix>:<id>", reads as the slice and its scope.
		if parts := strings.Split(seg, ":"); len(parts) == 3 && parts[1] != "" {
			segs = append(segs, parts[0], parts[1]+"-"+parts[2]+".scope")
			continue
		}
		segs = append(segs, seg)
	}
	for i, seg := range segs {
		if seg == "" {
			continue
		}
		if uid, qos, ok := podSegment(segs[:i], seg); ok {
			// A pod nested deeper (kind) replaces the outer one, and with
			// it the container found so far, which was the pod's host.
			info = event.Container{PodUID: uid, QoS: qos}
			continue
		}
		if id, runtime, conmon, ok := containerSegment(segs[:i], seg); ok {
			info.ID, info.Runtime, info.Conmon = id, runtime, conmon
		}
	}
	return info
}

// podSegment recognises a pod's cgroup: "pod<uid>" under the cgroupfs
// driver, "<parent>-pod<uid_with_underscores>.slice" under systemd, where
// the slice name repeats its parents' names ("kubepods-burstable-pod…").
func podSegment(parents []string, seg string) (uid, qos string, ok bool) {
	name := strings.TrimSuffix(seg, ".slice")
	var prefix string
	switch {
	case strings.HasPrefix(name, "pod"):
		uid = name[len("pod"):]
	default:
		i := strings.LastIndex(name, "-pod")
		if i < 0 {
			return "", "", false
		}
		prefix, uid = name[:i], name[i+len("-pod"):]
	}
	uid, ok = podUID(uid)
	if !ok {
		return "", "", false
	}
	// The QoS class is the kubelet's parent cgroup: burstable and
	// besteffort pods have one, guaranteed pods sit directly in kubepods.
	qos = QoSGuaranteed
	words := append(strings.Split(prefix, "-"), parents...)
	for _, w := range words {
		w = strings.TrimSuffix(w, ".slice")
		switch {
		case w == "burstable" || strings.HasSuffix(w, "-burstable"):
			qos = QoSBurstable
		case w == "besteffort" || strings.HasSuffix(w, "-besteffort"):
			qos = QoSBestEffort
		}
	}
	return uid, qos, true
}

// podUID accepts a UUID (with dashes, or with the underscores systemd
// needs because "-" separates slice levels) or a static pod's 32-hex hash,
// and returns it in the form the API server shows.
func podUID(s string) (string, bool) {
	switch len(s) {
	case 32:
		if isHex(s) {
			return s, true
		}
	case 36:
		u := strings.ReplaceAll(s, "_", "-")
		for i, c := range []byte(u) {
			dash := i == 8 || i == 13 || i == 18 || i == 23
			if dash != (c == '-') || (!dash && !isHexByte(c)) {
				return "", false
			}
		}
		return strings.ToLower(u), true
	}
	return "", false
}

// scopePrefixes map the systemd scope (or cgroupfs directory) prefixes of
// runtimes to their names. Longer prefixes first: "crio-conmon-" before
// "crio-".
var scopePrefixes = []struct {
	prefix, runtime string
	conmon          bool
}{
	{"cri-containerd-", RuntimeContainerd, false},
	{"crio-conmon-", RuntimeCRIO, true},
	{"crio-", RuntimeCRIO, false},
	{"docker-", RuntimeDocker, false},
	{"libpod-conmon-", RuntimePodman, true},
	{"libpod-", RuntimePodman, false},
	{"nerdctl-", RuntimeContainerd, false},
}

// containerSegment recognises a container's cgroup.
func containerSegment(parents []string, seg string) (id, runtime string, conmon, ok bool) {
	name := strings.TrimSuffix(seg, ".scope")
	for _, p := range scopePrefixes {
		if rest, found := strings.CutPrefix(name, p.prefix); found && isContainerID(rest) {
			return rest, p.runtime, p.conmon, true
		}
	}
	if name, found := strings.CutPrefix(seg, "lxc.payload."); found && name != "" {
		return name, RuntimeLXC, false, true
	}
	// A bare id: the cgroupfs driver of containerd, docker and the kubelet.
	if isContainerID(seg) {
		if len(parents) > 0 && parents[len(parents)-1] == "docker" {
			return seg, RuntimeDocker, false, true
		}
		return seg, "", false, true
	}
	return "", "", false, false
}

// isContainerID accepts the 64 lower-case hex digits every OCI runtime
// uses; shorter hex runs are too easily something else.
func isContainerID(s string) bool { return len(s) == 64 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return s != ""
}

func isHexByte(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }
