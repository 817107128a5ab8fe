#!/usr/bin/env bash
# Where a decode step's GPU time goes, kernel by kernel, on the GPU machine: Nsight Compute times
# each node of the captured decode graph alone (no launch gaps, so these are the kernels' own
# durations, unlike IRIS_CUDA_PROFILE=1's host-timed launches). Needs .gpu/iris.xz and .gpu/lib;
# SHAPE is a `bench synth` shape. Writes $OUT/ncu-SHAPE.csv and a per-kernel summary of the last
# decode step to $OUT/ncu-SHAPE.txt.
set -u
G=$(cd "$(dirname "$0")/.." && pwd)/.gpu
OUT=${OUT:-/tmp/gpu-out}
SHAPE=${SHAPE:-gemma3-270m:q8_0}
mkdir -p "$OUT" /tmp/m
[ -x "$G/iris" ] || { python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" "$G/iris.xz" "$G/iris"; chmod +x "$G/iris"; }
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
[ -n "$NCU" ] || { echo "no ncu on this machine" > "$OUT/ncu.txt"; exit 0; }
f=/tmp/m/${SHAPE%%:*}-${SHAPE##*:}.gguf
[ -f "$f" ] || LD_LIBRARY_PATH="$G/lib" "$G/iris" bench synth "$f" --shape "${SHAPE%%:*}" --quant "${SHAPE##*:}" > /dev/null
name=${SHAPE%%:*}-${SHAPE##*:}
timeout 300 env LD_LIBRARY_PATH="$G/lib" "$NCU" --clock-control none --graph-profiling node --csv --metrics gpu__time_duration.sum \
  --launch-count "${LAUNCHES:-1500}" "$G/iris" bench llm "$f" --device cuda --python none --runs 1 --tokens 3 > "$OUT/ncu-$name.csv" 2> "$OUT/ncu-$name.err"
# The last decode step (a one-token embedding lookup to the next) and the last pre-fill (an
# embedding lookup of many tokens to the next lookup).
python3 - "$OUT/ncu-$name.csv" > "$OUT/ncu-$name.txt" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head, rows = rows[0], rows[1:]
ki, vi, ii, ui, gi = (head.index(c) for c in ("Kernel Name", "Metric Value", "ID", "Metric Unit", "Grid Size"))
scale = {"nsecond": 1.0, "usecond": 1e3, "msecond": 1e6, "second": 1e9}
seq = []
for r in rows:
    try: seq.append((int(r[ii]), r[ki].split("(")[0], float(r[vi].replace(",", "")) * scale.get(r[ui], 1.0), r[gi]))
    except ValueError: pass
seq.sort()
print(f"{len(seq)} kernels timed")
starts = [i for i, s in enumerate(seq) if s[1].startswith("embed_")]
def summary(title, step):
    total = sum(s[2] for s in step)
    print(f"{title}: {len(step)} kernels, {total/1000:.1f} us of kernel time")
    by = collections.OrderedDict()
    for _, k, v, _ in step:
        n, t = by.get(k, (0, 0.0)); by[k] = (n + 1, t + v)
    for k, (n, t) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        print(f"  {k:<28} {n:>4} launches {t/1000:>9.1f} us  {t/n/1000:>7.2f} us each")
ones = [i for i in starts if seq[i][3].startswith("(1, ")]
many = [i for i in starts if not seq[i][3].startswith("(1, ")]
nxt = lambda i: min([j for j in starts if j > i], default=len(seq))
if len(ones) >= 2:
    summary("one decode step", seq[ones[-2]:nxt(ones[-2])])
whole = [i for i in many if nxt(i) < len(seq)]
if whole:
    summary(f"one pre-fill (grid {seq[whole[-1]][3]})", seq[whole[-1]:nxt(whole[-1])])
PY
cat "$OUT/ncu-$name.txt"
