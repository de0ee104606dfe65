#!/usr/bin/env bash
# Starts virtlogd and libvirtd where no init system runs them, and waits until libvirt answers.
# Safe to run again: a daemon already running the right way is left alone.
#
# libvirtd runs in the foreground under `tini -s`, a child subreaper. libvirt daemonizes each
# QEMU, so an exiting QEMU is reaped by the nearest subreaper, and libvirt counts a domain as
# stopped only once it has been reaped. Without one, that is PID 1: in containers it is often
# not an init and reaps orphans late (1.3-2 s measured here), which every domain stop waited for.
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

if [ -d /run/systemd/system ]; then
  # systemd starts and reaps them; nothing to do but wait for the socket below.
  :
else
  if ! pgrep -x virtlogd >/dev/null; then
    log "starting virtlogd"
    virtlogd -d
  fi
  daemon=$(pgrep -x libvirtd || true)
  if [ -n "$daemon" ]; then
    parent=$(ps -o comm= -p "$(ps -o ppid= -p "$daemon" | tr -d ' ')" || true)
    if [ "$parent" != tini ]; then
      log "restarting libvirtd under tini (running domains keep running)"
      kill "$daemon"
      for _ in $(seq 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$daemon" 2>/dev/null; then
        log "libvirtd (pid $daemon) did not stop within 10 s of SIGTERM; killing it"
        kill -KILL "$daemon" 2>/dev/null || true
      fi
      daemon=""
    fi
  fi
  if [ -z "$daemon" ]; then
    log "starting libvirtd"
    mkdir -p /var/log/libvirt
    # With every signal unblocked: a caller's blocked signals would otherwise pass through
    # tini to libvirtd, which then ignores SIGTERM (a Swift program's worker threads block
    # them all). perl-base is essential in Debian, so perl is always there.
    setsid perl -MPOSIX -e 'sigprocmask(SIG_SETMASK, POSIX::SigSet->new) or die; exec @ARGV or die "exec: $!"' \
      tini -s -- libvirtd </dev/null >>/var/log/libvirt/libvirtd-foreground.log 2>&1 &
  fi
fi

deadline=$((SECONDS + 30))
until [ -S /run/libvirt/libvirt-sock ]; do
  [ $SECONDS -lt $deadline ] || die "/run/libvirt/libvirt-sock did not appear within 30 s"
  sleep 0.1
done
# The daemon answers once its drivers are loaded; the first answer may also wait for QEMU's
# capability probe (seconds), which later calls reuse.
deadline=$((SECONDS + 90))
until virsh -c qemu:///system version >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || die "libvirtd did not answer on qemu:///system within 90 s"
  sleep 0.2
done
log "ready: $(qemu-system-x86_64 --version | head -n1); libvirt $(virsh -c qemu:///system version --daemon 2>/dev/null | sed -n 's/^Running against daemon: //p')"
