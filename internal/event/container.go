package event

// Container is what a task's cgroup path says about its container (see
// internal/decode/container, which reads it). The zero value means "not in a
// container" (a host service, a user session).
type Container struct {
	// ID is the container id as the runtime prints it (64 hex digits for
	// every OCI runtime; the container name for LXC). Empty when the
	// cgroup is not a container's, e.g. a pod's own cgroup.
	ID string `json:"id,omitempty"`
	// Runtime names the runtime ("containerd", "cri-o", "docker",
	// "podman", "lxc"), empty when the path does not tell (a bare id under
	// the kubelet's cgroupfs driver is used by both containerd and docker).
	Runtime string `json:"runtime,omitempty"`
	// PodUID is the Kubernetes pod's UID in its API form (dashes), or the
	// 32-hex-digit hash of a static pod; empty outside Kubernetes.
	PodUID string `json:"pod_uid,omitempty"`
	// QoS is the pod's QoS class ("guaranteed", "burstable",
	// "besteffort"), empty outside Kubernetes.
	QoS string `json:"qos,omitempty"`
	// Conmon marks the runtime's monitor process of the container (CRI-O
	// and podman put it in a cgroup of its own), not the workload.
	Conmon bool `json:"conmon,omitempty"`
}

// InContainer reports whether the path named a container or a pod.
func (c Container) InContainer() bool { return c.ID != "" || c.PodUID != "" }

// ShortID is the 12-character id docker, crictl and podman print.
func (c Container) ShortID() string {
	if len(c.ID) != 64 {
		return c.ID
	}
	for i := 0; i < len(c.ID); i++ {
		if b := c.ID[i]; !(b >= '0' && b <= '9' || b >= 'a' && b <= 'f') {
			return c.ID
		}
	}
	return c.ID[:12]
}
