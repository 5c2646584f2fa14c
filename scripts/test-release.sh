#!/usr/bin/env bash
# Tests what `make release` put in dist/ (run it first), as root, on the
# real kernel (.ci/run runs it after make release):
#
#  1. the OCI image under podman as the DaemonSet runs it: uid 0, every
#     capability dropped but BPF and PERFMON, the host's PID namespace, the
#     kernel's BTF read-only, a read-only root, no network. memtrace
#     capture runs in it while test/provoke, on the host, makes a real
#     huge-page shmget (failing when no huge page is free); the event must
#     be in the container's output.
#  2. the .deb of this machine's architecture installed with dpkg --root
#     into an empty root, then memtrace --version run in it (chroot).
#  3. the manifest list memtrace-oci.tar: an OCI image index with exactly
#     linux/amd64 and linux/arm64, each instance the image of
#     memtrace-oci-ARCH.tar (same config) and its config saying that
#     platform. The image of step 1 is loaded from this list, so podman's
#     choice of this machine's platform from it is tested too.
#
# Leaves nothing behind: the container is --rm, the image is removed, and
# the temporary roots are deleted. Installs podman (and runc, see below)
# and python3 with apt when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
DIST=${DIST:-dist}
arch=$(dpkg --print-architecture)
[ "$(id -u)" = 0 ] || { echo "test-release: needs root (BPF, podman, dpkg --root)" >&2; exit 1; }
for f in "memtrace-oci-$arch.tar" memtrace-oci.tar; do
	[ -f "$DIST/$f" ] || { echo "test-release: no $DIST/$f: run make release first" >&2; exit 1; }
done

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
	echo "== installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi

tmp=$(mktemp -d)
image=
ctr=memtrace-release-test-$$
cleanup() {
	podman rm -f -i "$ctr" >/dev/null 2>&1 || true
	[ -n "$image" ] && podman rmi -f "$image" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "== .deb: dpkg --root into an empty root, memtrace --version there"
deb=$(ls "$DIST"/memtrace_*_"$arch".deb)
root="$tmp/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
# --force-script-chrootless: the empty root has no shell; the package has
# no maintainer scripts anyway. The binary is static: it needs nothing of
# the root but itself.
dpkg --root="$root" --force-script-chrootless --log=/dev/null -i "$deb" >/dev/null
dpkg --root="$root" -L memtrace | grep -qx /usr/bin/memtrace
dpkg --root="$root" -L memtrace | grep -qx /usr/share/man/man1/memtrace.1.gz
got=$(chroot "$root" /usr/bin/memtrace --version)
echo "$got (from $(basename "$deb"))"
case $got in "memtrace "*) ;; *) echo "unexpected --version output: $got" >&2; exit 1 ;; esac
if [ -f deploy/systemd/memtrace-record.service ]; then
	dpkg --root="$root" -L memtrace | grep -qx /usr/lib/systemd/system/memtrace-record.service
	# Its ExecStart must name the installed binary.
	exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$root/usr/lib/systemd/system/memtrace-record.service")
	[ -x "$root$exe" ] || { echo "the packaged unit runs $exe, which the package does not install" >&2; exit 1; }
	echo "unit: memtrace-record.service runs $exe"
fi

echo "== manifest list: one image per platform"
# Prints a line per platform, then the config digest of this machine's
# platform, which is the ID of the image podman loads from the list.
python3 - "$DIST" "$arch" >"$tmp/list.txt" <<'EOF'
import json, sys, tarfile
dist, host = sys.argv[1], sys.argv[2]
want = {("linux", "amd64"), ("linux", "arm64")}
INDEX = "application/vnd.oci.image.index.v1+json"

def blob(tar, digest):
    return json.load(tar.extractfile("blobs/" + digest.replace(":", "/")))

def manifests(tar):
    return json.load(tar.extractfile("index.json"))["manifests"]

with tarfile.open(f"{dist}/memtrace-oci.tar") as tar:
    top = manifests(tar)
    if len(top) != 1 or top[0]["mediaType"] != INDEX:
        sys.exit(f"memtrace-oci.tar: want one image index, have {top}")
    got = {}
    for m in blob(tar, top[0]["digest"])["manifests"]:
        plat = (m["platform"]["os"], m["platform"]["architecture"])
        if plat in got:
            sys.exit(f"memtrace-oci.tar: {plat} twice")
        cfgdesc = blob(tar, m["digest"])["config"]
        cfg = blob(tar, cfgdesc["digest"])
        if (cfg["os"], cfg["architecture"]) != plat:
            sys.exit(f"memtrace-oci.tar: the {plat} instance's config says {cfg['os']}/{cfg['architecture']}")
        got[plat] = cfgdesc["digest"]
if set(got) != want:
    sys.exit(f"memtrace-oci.tar: platforms {sorted(got)}, want {sorted(want)}")
for (os_, arch), cfg in sorted(got.items()):
    with tarfile.open(f"{dist}/memtrace-oci-{arch}.tar") as tar:
        own = blob(tar, manifests(tar)[0]["digest"])["config"]["digest"]
    if own != cfg:
        sys.exit(f"memtrace-oci.tar: the {os_}/{arch} instance has config {cfg}, memtrace-oci-{arch}.tar {own}")
    print(f"{os_}/{arch}: config {cfg[:19]}..., as memtrace-oci-{arch}.tar")
print(got[("linux", host)])
EOF
sed '$d' "$tmp/list.txt"
hostcfg=$(tail -n1 "$tmp/list.txt")

echo "== image: memtrace capture under podman with the DaemonSet's capabilities"
image=$(podman load -q -i "$DIST/memtrace-oci.tar" | sed -n 's/^Loaded image[^:]*: *//p' | head -n1)
[ -n "$image" ] || { echo "podman load gave no image name" >&2; exit 1; }
id=$(podman image inspect --format '{{.Id}}' "$image")
[ "sha256:$id" = "$hostcfg" ] || { echo "podman loaded $id from the manifest list, not the linux/$arch image ($hostcfg)" >&2; exit 1; }
echo "loaded $image from the manifest list: the linux/$arch image"

# Debian 12's podman 4.3 ships a seccomp profile older than CAP_BPF: it
# allows bpf and perf_event_open to CAP_SYS_ADMIN only. Newer profiles
# (containers-common 0.53+, containerd 1.7, moby 24, which Kubernetes'
# RuntimeDefault uses) also allow them to CAP_BPF and CAP_PERFMON; the
# test applies the same change to the installed default, nothing more.
python3 - /usr/share/containers/seccomp.json "$tmp/seccomp.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
extra = {"bpf": "CAP_BPF", "perf_event_open": "CAP_PERFMON"}
for r in p["syscalls"]:
    if r["action"] == "SCMP_ACT_ERRNO" and set(extra) & set(r["names"]):
        r["names"] = [n for n in r["names"] if n not in extra]
for name, cap in extra.items():
    p["syscalls"].append({"names": [name], "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}})
    p["syscalls"].append({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                          "excludes": {"caps": ["CAP_SYS_ADMIN", cap]}})
json.dump(p, open(sys.argv[2], "w"), indent=1)
EOF

# podman raises nofile and nproc to its defaults, which needs
# CAP_SYS_RESOURCE in the runtime; ask for what this shell has (lowering
# needs no privilege), as a kubelet passes its own limits.
ulimits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=4096:4096")

# crun refuses a hybrid cgroup hierarchy (v1 controllers beside an empty
# cgroup2 at /sys/fs/cgroup/unified, as on the CI host); runc takes it.
runtime=()
if ! podman run --rm "${ulimits[@]}" --network=none "$image" version >/dev/null 2>"$tmp/err"; then
	echo "default runtime failed ($(tail -n1 "$tmp/err")): using runc"
	runtime=(--runtime runc)
fi

comm=mt-image-$$
comm=${comm:0:15}
mkdir -p "$tmp/out"
# As the DaemonSet: runAsUser 0, capabilities BPF and PERFMON only (its
# SYS_RESOURCE is for 5.8-5.10's memlock accounting; not added here, so a
# need for it on this kernel would fail the test), hostPID, BTF read-only.
# --ready-file tells when every probe is attached; capture writes its JSON
# to stdout and ends on SIGINT with a complete document.
podman "${runtime[@]}" run --rm --name "$ctr" "${ulimits[@]}" \
	--user 0 --cap-drop=all --cap-add=BPF --cap-add=PERFMON \
	--security-opt seccomp="$tmp/seccomp.json" \
	--pid=host --network=none --read-only \
	-v /sys/kernel/btf:/sys/kernel/btf:ro -v "$tmp/out:/out" \
	"$image" capture --duration 0 --comm "$comm" --signals hugetlb --ready-file /out/ready -o - \
	>"$tmp/capture.json" 2>"$tmp/capture.err" &
runner=$!
for _ in $(seq 120); do
	[ -e "$tmp/out/ready" ] && break
	kill -0 "$runner" 2>/dev/null || break
	sleep 0.5
done
if [ ! -e "$tmp/out/ready" ]; then
	echo "memtrace in the container did not attach its probes:" >&2
	cat "$tmp/capture.err" >&2
	exit 1
fi
go build -o "$tmp/provoke" ./test/provoke
# A huge-page shmget: it fails with ENOMEM when no huge page is free (the
# host's usual state); the pool is left alone (other tests may use it), and
# the request is an event whether it fails or not.
"$tmp/provoke" huge -op shmget -comm "$comm" >"$tmp/provoke.json"
podman kill --signal INT "$ctr" >/dev/null
wait "$runner" || { echo "the container exited with $?:" >&2; cat "$tmp/capture.err" >&2; exit 1; }
python3 - "$tmp/capture.json" "$tmp/provoke.json" "$comm" <<'EOF'
import json, sys
cap = json.load(open(sys.argv[1]))
prov = json.load(open(sys.argv[2]))
comm = sys.argv[3]
evs = [e for e in cap.get("events", []) if json.dumps(e).find(comm) >= 0]
print(f"provoke: {prov['Syscall']} failed {prov['Failed']}x (pid {prov['Pid']}); "
      f"container's capture: {len(cap.get('events', []))} events, {len(evs)} from {comm}")
if not evs:
    sys.exit(f"the container's capture has no event of {comm}: " + json.dumps(cap)[:2000])
print("event:", json.dumps(evs[0])[:400])
EOF
echo "== release artifacts ok"
