#!/usr/bin/env bash
# Runs every fuzz target at once, two libFuzzer workers each sharing one corpus, for SECONDS;
# then merges what they found into OUT/corpus/TARGET. Binaries from `cargo fuzz build`
# (stripped into fuzz/bin). Crashes go to OUT/artifacts/TARGET, logs to OUT/log/TARGET, the merged
# corpus to OUT/corpus.tar.gz.
# Usage: fuzz/long-run.sh SECONDS OUT
set -u
seconds=$1 out=$2
cd "$(dirname "$0")"
targets=(${TARGETS:-wav image config wyoming chat gguf multipart})
for t in "${targets[@]}"; do
    mkdir -p "work/$t" "$out/artifacts/$t" "$out/log/$t" "$out/corpus/$t"
    cp corpus/$t/* "work/$t/"
done
for t in "${targets[@]}"; do
    (cd "$out/log/$t" && "$OLDPWD/bin/$t" "$OLDPWD/work/$t" -jobs=2 -workers=2 -max_total_time="$seconds" \
        -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$out/artifacts/$t/" > run.log 2>&1) &
done
wait
for t in "${targets[@]}"; do
    "bin/$t" -merge=1 "$out/corpus/$t" "work/$t" > "$out/log/$t/merge.log" 2>&1
    echo "$t: $(ls "$out/artifacts/$t" | wc -l) artifacts; corpus $(ls "work/$t" | wc -l) -> $(ls "$out/corpus/$t" | wc -l);" \
         "$(grep -h 'stat::number_of_executed_units' "$out"/log/$t/fuzz-*.log | awk '{s+=$2} END {print s " runs"}');" \
         "peak rss $(grep -h 'stat::peak_rss_mb' "$out"/log/$t/fuzz-*.log | awk '{if ($2>m) m=$2} END {print m " MB"}')"
done | tee "$out/summary.txt"
# One file back, not thousands.
tar -C "$out" -czf "$out/corpus.tar.gz" corpus && rm -rf "$out/corpus"
