#!/usr/bin/env bash
# make release: everything a server needs, for amd64 and arm64, in dist/:
#
#   memtrace-linux-ARCH          static binaries (no cgo; BPF objects embedded)
#   memtrace_VERSION_ARCH.deb    /usr/bin/memtrace, the man page, the --help
#                                text of every command, the recorder's
#                                systemd unit when deploy/systemd has one
#   memtrace-VERSION.ARCH.rpm    the same files, when rpmbuild is installed
#   memtrace-oci-ARCH.tar        an OCI image FROM scratch holding the
#                                binary, built with buildah (podman load -i)
#   memtrace-oci.tar             the manifest list (OCI image index) of
#                                those images, one per platform, with the
#                                images themselves: an OCI archive to push
#                                to a registry as one multi-arch tag
#                                (skopeo copy --all oci-archive:... docker://...)
#   SHA256SUMS
#
# Nothing but Go modules is fetched: packages are put together with
# dpkg-deb and rpmbuild, the image with buildah from the binary alone, so
# no base image is pulled. Cross builds need no emulation: nothing runs for
# the foreign architecture. As root on Debian, installs help2man, buildah
# and rpm when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
ARCHES=${ARCHES:-amd64 arm64}
DIST=${DIST:-dist}
# Reproducible timestamps in the packages: the commit's time.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# Debian versions start with a digit: v1.2.3 is 1.2.3, a bare commit
# 0~gitCOMMIT; "-" would start a Debian revision, so it becomes "+".
debver=${VERSION#v}
[[ $debver =~ ^[0-9]+\. ]] || debver="0~git$debver"
debver=${debver//-/+}

need=()
command -v help2man >/dev/null 2>&1 || need+=(help2man)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v rpmbuild >/dev/null 2>&1 || need+=(rpm)
if ((${#need[@]})) && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "== installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi
for t in help2man buildah dpkg-deb; do
	command -v "$t" >/dev/null || { echo "release: $t not found (apt-get install ${t/dpkg-deb/dpkg})" >&2; exit 1; }
done

rm -rf "$DIST"
mkdir -p "$DIST"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== binaries ($VERSION)"
for arch in $ARCHES; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath \
		-ldflags "-s -w -X main.version=$VERSION" -o "$DIST/memtrace-linux-$arch" ./cmd/memtrace
	if readelf -l "$DIST/memtrace-linux-$arch" 2>/dev/null | grep -q INTERP; then
		echo "release: $DIST/memtrace-linux-$arch is dynamically linked" >&2
		exit 1
	fi
done

echo "== man page and help text"
# The host's own build describes itself; the text is the same for every
# architecture.
hostbin="$work/memtrace"
CGO_ENABLED=0 $GO build -trimpath -ldflags "-X main.version=$VERSION" -o "$hostbin" ./cmd/memtrace
mkdir -p "$work/doc"
help2man --no-info --no-discard-stderr --section 1 --source "memtrace $VERSION" \
	--name "trace Linux page-allocation failures, fragmentation and huge-page requests" \
	"$hostbin" >"$work/doc/memtrace.1"
gzip -9n "$work/doc/memtrace.1"
{
	"$hostbin" --help
	for c in $("$hostbin" --help | awk '/^Commands:/ {on=1; next} on && NF {print $1} on && !NF {exit}'); do
		case $c in help | version) continue ;; esac
		printf '\n\n== memtrace help %s\n\n' "$c"
		"$hostbin" help "$c" 2>&1
	done
} >"$work/doc/help.txt"
unit=deploy/systemd/memtrace-record.service
[ -f "$unit" ] && echo "including $unit" || echo "no $unit: the packages hold no systemd unit"

# stage ARCH DIR: the installed tree of one architecture.
stage() {
	local arch=$1 root=$2
	install -D -m 0755 "$DIST/memtrace-linux-$arch" "$root/usr/bin/memtrace"
	install -D -m 0644 "$work/doc/memtrace.1.gz" "$root/usr/share/man/man1/memtrace.1.gz"
	install -D -m 0644 "$work/doc/help.txt" "$root/usr/share/doc/memtrace/help.txt"
	install -D -m 0644 README.md "$root/usr/share/doc/memtrace/README.md"
	if [ -f "$unit" ]; then
		# The unit is written for a hand install in /usr/local/bin; the
		# package's binary is /usr/bin/memtrace.
		mkdir -p "$root/usr/lib/systemd/system"
		sed 's|/usr/local/bin/memtrace|/usr/bin/memtrace|g' "$unit" >"$root/usr/lib/systemd/system/$(basename "$unit")"
		chmod 0644 "$root/usr/lib/systemd/system/$(basename "$unit")"
	fi
}

echo "== .deb"
for arch in $ARCHES; do
	root="$work/deb-$arch"
	stage "$arch" "$root"
	mkdir -p "$root/DEBIAN"
	# No maintainer scripts: the unit is installed, not enabled (the
	# recorder is opt-in: systemctl enable --now memtrace-record).
	cat >"$root/DEBIAN/control" <<EOF
Package: memtrace
Version: $debver
Architecture: $arch
Maintainer: memtrace developers <memtrace@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Section: admin
Priority: optional
Description: Linux kernel memory tracer (eBPF)
 memtrace traces page-allocation failures, allocator fragmentation and
 huge-page requests with CO-RE eBPF programs, and tells which process
 and container they hit. Needs Linux 5.8+ with BTF (CONFIG_DEBUG_INFO_BTF)
 and root (CAP_BPF and CAP_PERFMON).
EOF
	dpkg-deb --root-owner-group -Zxz --build "$root" "$DIST/memtrace_${debver}_$arch.deb" >/dev/null
done

if command -v rpmbuild >/dev/null; then
	echo "== .rpm"
	rpmver=${debver//\~/.}
	rpmver=${rpmver//+/.}
	for arch in $ARCHES; do
		case $arch in amd64) rarch=x86_64 ;; arm64) rarch=aarch64 ;; *) rarch=$arch ;; esac
		top="$work/rpm-$arch"
		stage "$arch" "$top/root"
		files=$(cd "$top/root" && find . -type f | sed 's|^\.||' | sort)
		mkdir -p "$top/SPECS"
		cat >"$top/SPECS/memtrace.spec" <<EOF
Name: memtrace
Version: $rpmver
Release: 1
Summary: Linux kernel memory tracer (eBPF)
License: see /usr/share/doc/memtrace
%global debug_package %{nil}
%global __os_install_post %{nil}
%global _build_id_links none
%description
memtrace traces page-allocation failures, allocator fragmentation and
huge-page requests with CO-RE eBPF programs.
%install
cp -a $top/root/. %{buildroot}/
%files
$files
EOF
		rpmbuild --quiet -bb --target "$rarch" --define "_topdir $top" \
			--define "_rpmdir $top/RPMS" "$top/SPECS/memtrace.spec" >/dev/null
		mv "$top"/RPMS/*/*.rpm "$DIST/"
	done
fi

echo "== OCI images (buildah, FROM scratch)"
for arch in $ARCHES; do
	# buildah commits straight into the archive: nothing stays in the
	# local image storage (load it with podman load -i).
	ctr=$(buildah from --arch "$arch" scratch)
	buildah copy --chmod 0755 "$ctr" "$DIST/memtrace-linux-$arch" /memtrace >/dev/null
	# As deploy/Dockerfile: nobody by default; the DaemonSet runs it as
	# uid 0 with CAP_BPF and CAP_PERFMON only.
	buildah config --os linux --arch "$arch" --user 65534:65534 --port 9479 \
		--entrypoint '["/memtrace"]' --cmd 'serve --listen 0.0.0.0:9479' \
		--label org.opencontainers.image.title=memtrace \
		--label org.opencontainers.image.version="$VERSION" \
		--created-by "scripts/release.sh" "$ctr"
	buildah commit --quiet --rm --timestamp "$SOURCE_DATE_EPOCH" "$ctr" \
		"oci-archive:$DIST/memtrace-oci-$arch.tar:memtrace:$VERSION" >/dev/null
done

echo "== manifest list (buildah manifest)"
# In a storage of its own under $work, removed with it: the list and the
# instances it reads are never left in the machine's image storage.
store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
list=memtrace-release-$$
buildah "${store[@]}" manifest create "$list" >/dev/null
for arch in $ARCHES; do
	buildah "${store[@]}" manifest add "$list" "oci-archive:$DIST/memtrace-oci-$arch.tar" >/dev/null
done
buildah "${store[@]}" manifest push --quiet --all --format oci "$list" \
	"oci-archive:$DIST/memtrace-oci.tar:memtrace:$VERSION"
buildah "${store[@]}" manifest rm "$list" >/dev/null

(cd "$DIST" && sha256sum -- * >SHA256SUMS)
echo "== $DIST"
ls -l "$DIST"
