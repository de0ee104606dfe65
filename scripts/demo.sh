#!/usr/bin/env bash
# The main job on built-in defaults: check the host, then run the default matrix (the newest
# bookworm, bookworm-backports and trixie-backports kernels x an NVDIMM and a CXL machine x
# the driver-order scenario) and check that every cell ends as measured: the fsdev V9
# stand-in fails exactly where fsdev_dax registers first, everything else passes, and CXL
# regions on 6.12 and 7.3 are not applicable in the kernel's own words.
set -uo pipefail
cd "$(dirname "$0")/.."
cxllab=.build/debug/cxllab
out=${CXLLAB_DEMO_OUT:-.build/demo}
mkdir -p "$out"

printf '== cxllab doctor\n'
$cxllab doctor || exit 1

printf '\n== cxllab matrix matrices/default.yaml\n'
$cxllab matrix matrices/default.yaml --junit "$out/junit.xml" --json > "$out/results.json"
status=$?
python3 - "$out/results.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))
problems = []
for r in results:
    cell, outcome = r["cell"], r["outcome"]["outcome"]
    verdict = outcome["verdict"]
    label = f'{cell["kernel"]} {cell["topology"]} [{cell["variant"]}]'
    print(f'{verdict.upper():5} {label}')
    if "cxl" in cell["topology"] and cell["kernel"] != "debian:bookworm":
        want = "n/a"
    elif cell["variant"] == "stand-in automatch=1":
        want = "fail"
        cases = outcome["cases"]
        failing = sorted(c["name"] for c in cases if c["verdict"] != "pass")
        order = lambda c: c["name"].split(" < ")
        first = sorted(c["name"] for c in cases if order(c).index("fsdev_dax") < order(c).index("device_dax"))
        if failing != first:
            problems.append(f"{label}: failing orders {failing}, expected those with fsdev_dax first {first}")
    else:
        want = "pass"
    if verdict != want:
        problems.append(f"{label}: {verdict}, expected {want}")
print()
if problems:
    print("demo: unexpected results:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"demo: all {len(results)} cells ended as measured; JUnit and JSON are in the folder of {sys.argv[1]}")
PY
check=$?
[ $status -le 1 ] && exit $check
echo "demo: the matrix could not run every cell (exit $status)" >&2
exit 1
