#!/usr/bin/env bash
# One idempotent step that makes a fresh Debian 12 host ready for cxllab, run as root.
# Usage: setup-host.sh [--suite] [--tests]
#   (none)    what the main job needs: `make demo`, labs, runs, races and matrices;
#   --suite   also what `cxllab suite ndctl` needs (building ndctl's tests, the tools they
#             call in the guest): `make setup-suite`;
#   --tests   also what the test suite needs (the suite's tools and Chromium for the HTML
#             report's tests): `make test`.
# It installs:
#  - Debian's bookworm-backports suite, from the host's own Debian mirror, in a sources file
#    of its own; QEMU 10 and libvirt 11 from it (with bookworm's QEMU 7.2 the 6.12 and 7.x
#    kernels create no CXL memory device: their cxl_pci needs type3 event interrupts);
#  - the other Debian packages cxllab and its tests use;
#  - virtlogd and libvirtd started where no init system has started them (start-libvirtd.sh);
#  - /dev/kvm given to group kvm, mode 0660: otherwise libvirt finds its QEMU capability
#    cache stale on every call and each domain start takes ~70 s instead of ~2 s.
# A second run changes nothing and takes about a second.
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs Debian packages and starts libvirtd)"
. /etc/os-release
[ "${ID:-}" = debian ] || die "this step knows Debian; found ${PRETTY_NAME:-an unknown system}"
codename=${VERSION_CODENAME:?}

# Packages from <codename>-backports, and from the release itself.
# libudev-dev too: the backports QEMU/libvirt upgrade libudev1, so bookworm's libudev-dev no longer installs.
backports_packages=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
                    libudev-dev)
release_packages=(libxml2-dev libsqlite3-dev busybox-static ndctl daxctl cpio kmod xz-utils zstd pkg-config
                  ca-certificates tini
                  # building modules against Debian's headers, and a build root for trixie's kernels
                  gcc make libc6-dev debootstrap debian-archive-keyring)
suite_packages=(# building ndctl's tests (cxllab suite ndctl)
                meson ninja-build libkmod-dev uuid-dev libjson-c-dev libkeyutils-dev libiniparser-dev
                libtracefs-dev libtraceevent-dev
                # what ndctl's tests call in the guest (images/ndctl-suite.yaml)
                bash jq e2fsprogs xfsprogs dmsetup fio keyutils parted util-linux uuid-runtime xxd trace-cmd udev)
test_packages=(libxml2-utils chromium)
for argument in "$@"; do
  case $argument in
    --suite) release_packages+=("${suite_packages[@]}") ;;
    --tests) release_packages+=("${suite_packages[@]}" "${test_packages[@]}") ;;
    *) die "unknown option '$argument': give --suite (cxllab suite ndctl's tools) or --tests (what make test needs), or nothing" ;;
  esac
done
want_qemu_major=9   # at least; bookworm-backports carries 10.0

missing=()
for p in "${backports_packages[@]}" "${release_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
qemu_major=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null | sed -E 's/^[0-9]+://; s/\..*//' || true)
if [ -n "$qemu_major" ] && [ "$qemu_major" -lt "$want_qemu_major" ] 2>/dev/null; then
  missing+=(qemu-system-x86)
fi

if [ ${#missing[@]} -gt 0 ]; then
  sources=/etc/apt/sources.list.d/cxllab-backports.sources
  if ! grep -rqsE "^[^#]*\b${codename}-backports\b" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # The host's own Debian mirror, from either apt format; deb.debian.org when none is found.
    mirror=$(grep -rhsE "^(deb |URIs:)" /etc/apt/sources.list /etc/apt/sources.list.d/ \
             | grep -vE 'security|disabled' | grep -oE 'https?://[^ ]+' | grep -E '/debian/?$' | head -n1 || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    log "enabling ${codename}-backports from $mirror ($sources)"
    cat > "$sources" <<EOS
Types: deb
URIs: ${mirror%/}
Suites: ${codename}-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends -t "${codename}-backports" "${backports_packages[@]}" >/dev/null
  apt-get install -y -q --no-install-recommends "${release_packages[@]}" >/dev/null
else
  log "packages already installed"
fi

if [ -e /dev/kvm ]; then
  if [ "$(stat -c %G:%a /dev/kvm)" != kvm:660 ]; then
    getent group kvm >/dev/null || groupadd --system kvm
    chgrp kvm /dev/kvm
    chmod 0660 /dev/kvm
    log "gave /dev/kvm to group kvm, mode 0660"
  fi
fi

bash "$(dirname "$0")/start-libvirtd.sh"
