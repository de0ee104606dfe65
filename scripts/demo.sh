#!/usr/bin/env bash
# The main job on built-in defaults: check the host, then run the default matrix (the newest
# bookworm, bookworm-backports and trixie-backports kernels x an NVDIMM machine and a CXL
# machine with a pmem and a RAM region x the driver-order scenario). The matrix file states
# what every cell is expected to do (its `expect` rules: the fsdev V9 stand-in fails exactly
# where fsdev_dax registers first, on NVDIMM and CXL devdax devices alike; everything else
# passes, and no cell may be "not applicable"), and cxllab holds each cell to it: its exit
# status is the demo's.
set -uo pipefail
cd "$(dirname "$0")/.."
cxllab=.build/debug/cxllab
out=${CXLLAB_DEMO_OUT:-.build/demo}
mkdir -p "$out"

printf '== cxllab doctor\n'
$cxllab doctor || exit 1

printf '\n== cxllab matrix matrices/default.yaml\n'
$cxllab matrix matrices/default.yaml --junit "$out/junit.xml" --report "$out/report"
status=$?
case $status in
  0) printf '\ndemo: every cell did as matrices/default.yaml expects; JUnit and the HTML report are in %s\n' "$out" ;;
  1) printf '\ndemo: a cell deviated from what matrices/default.yaml expects (see above)\n' >&2 ;;
  *) printf '\ndemo: the matrix could not run every cell (exit %s)\n' "$status" >&2 ;;
esac
exit $status
