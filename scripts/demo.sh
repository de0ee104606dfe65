#!/usr/bin/env bash
# The main job on built-in defaults: check the host, then show the driver-order scenario on
# the bug it exists for. Exits non-zero only when something does not behave as measured.
set -uo pipefail
cd "$(dirname "$0")/.."
cxllab=.build/debug/cxllab
topology=topologies/nvdimm-single.yaml
status=0

step() { printf '\n== %s\n' "$*"; }
expect() {  # expect STATUS COMMAND...
  local want=$1; shift
  "$@"; local got=$?
  if [ "$got" -ne "$want" ]; then
    printf 'demo: expected exit %s, got %s from: %s\n' "$want" "$got" "$*" >&2
    status=1
  fi
}

step "cxllab doctor"
expect 0 $cxllab doctor

step "fsdev V9 behaviour (stand-in, automatch=1) on Debian's 6.12: the orders where fsdev_dax registers first must fail"
expect 1 $cxllab run $topology --kernel debian:bookworm-backports --module images/modules/fsdev_dax:automatch=1

step "the agreed fix (stand-in, automatch=0) on the same kernel: every order passes"
expect 0 $cxllab run $topology --kernel debian:bookworm-backports --module images/modules/fsdev_dax:automatch=0

step "Debian's 7.3 with its real fsdev_dax: binds only when asked"
expect 0 $cxllab run $topology --kernel debian:trixie-backports

step "Debian's 6.1: no fsdev_dax, and why no stand-in"
expect 0 $cxllab run $topology --kernel debian:bookworm

if [ $status -eq 0 ]; then
  printf '\ndemo: every result is what the review thread and the measurements say.\n'
fi
exit $status
