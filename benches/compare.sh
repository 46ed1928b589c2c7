#!/usr/bin/env bash
# Side-by-side benchmark of snap against restic, borg, rustic and bupstash on a generated phone
# folder. Every tool goes through the same steps on the same folder state:
#   init, initial backup, unchanged re-backup, DAYS daily backups (new photos, a deletion, EXIF
#   edits, an album moved, a new database and new exports), a re-pull (the folder copied again
#   with `cp -a`: new inodes and ctimes), full restore (verified with diff -r), one-folder restore,
#   full data check.
# Baselines in the same run: `cat` + `b3sum` of the folder (reading and hashing it once) and
# `cp -a` of the folder (the "baseline" row of the full-restore step, measured in the same
# rotation as the restores). Data is in the page cache for every step.
#
#   bash benches/compare.sh [small|gigabyte] [DAYS]        (default: gigabyte 3)
#
# snap runs twice: "snap" with a password (Argon2id, like restic, rustic and borg) and
# "snap-key" with a key file (like bupstash, which has no passwords).
# Peers: apt-get install restic borgbackup hyperfine; cargo install --locked rustic-rs bupstash b3sum.
# A peer that is not installed is skipped, and the table says so.
set -euo pipefail
if [ "${1:-}" != "__run" ]; then
    size="${1:-gigabyte}"
    days="${2:-3}"
    cd "$(dirname "$0")/.."
    cargo build --release --quiet --bin snap --example phone_folder
    export PATH="$PWD/target/release:$HOME/.cargo/bin:$PATH"
    export gen="$PWD/target/release/examples/phone_folder" self="$PWD/benches/compare.sh"
    export work="$(mktemp -d "${TMPDIR:-/tmp}/snap-compare.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    export src="$work/phone"
    results="$work/results.tsv"
    : > "$results"
    export SNAP_PASSWORD=bench RESTIC_PASSWORD=bench RUSTIC_PASSWORD=bench BORG_PASSPHRASE=bench
    export SNAP_REPOSITORY="$work/repo-snap" RESTIC_REPOSITORY="$work/repo-restic" RUSTIC_REPOSITORY="$work/repo-rustic"
    export BORG_REPO="$work/repo-borg" BUPSTASH_REPOSITORY="$work/repo-bupstash" BUPSTASH_KEY="$work/bupstash.key"
    export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
    export XDG_CACHE_HOME="$work/cache" BUPSTASH_SEND_LOG="$work/bupstash.sendlog"
fi


# Every measured step starts alike: earlier steps' writeback finished, the page cache emptied
# (where permitted), then the source and the tool's own repository read back into it.
warm() {
    sync
    echo 3 > /proc/sys/vm/drop_caches 2> /dev/null || true
    find "$src" -type f -print0 | xargs -0 cat > /dev/null
    if [ -n "${1:-}" ] && [ -d "$work/repo-$1" ]; then find "$work/repo-$1" -type f -print0 | xargs -0 -r cat > /dev/null; fi
    # The tools' local caches (borg's chunk cache, restic's and rustic's caches, bupstash's send log).
    find "$work/cache" "$BUPSTASH_SEND_LOG" -type f -print0 2> /dev/null | xargs -0 -r cat > /dev/null || true
    sync
}
repo_bytes() { case $1 in baseline) echo 0 ;; *) du -sb "$work/repo-$1" 2>/dev/null | cut -f1 || echo 0 ;; esac; }

# measure STEP TOOL COMMAND...: wall, CPU (user+sys), peak RSS and repository size.
measure() {
    local step=$1 tool=$2
    shift 2
    if ! /usr/bin/time -f "%e %U %S %M" -o "$work/time" bash "$self" __run "$@" > "$work/step.stdout" 2> "$work/step.stderr"; then
        echo "FAILED: $tool $step: $(tail -n 3 "$work/step.stderr")" | tee -a "$work/failures"
        return 0
    fi
    read -r wall user sys rss < "$work/time"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$step" "$tool" "$wall" "$(python3 -c "print(round($user + $sys, 2))")" "$rss" "$(repo_bytes "$tool")" >> "$results"
}

# Removes one tool's repository and its own local state, and nothing of the others'.
forget_tool() {
    rm -rf "$work/repo-$1"
    case $1 in
        borg | restic | rustic) rm -rf "$XDG_CACHE_HOME/$1" ;;
        bupstash) rm -f "$BUPSTASH_SEND_LOG" "$BUPSTASH_KEY" ;;
        snap-key) rm -f "$work/snap.key" ;;
    esac
}

# Runs STEP for every tool ROUNDS times in a rotated order (the table shows the median):
#   repeat STEP ROUNDS FUNCTION [ARGS]; FUNCTION gets the tool as its first argument.
repeat() {
    local step=$1 rounds=$2 fn=$3
    shift 3
    local n=${#tools[@]}
    for round in $(seq 1 "$rounds"); do
        for i in $(seq 0 $((n - 1))); do
            local t=${tools[$(((i + round - 1) % n))]}
            "$fn" "$t" "$@"
        done
    done
}

# snap opened with a key file instead of a password.
snapk() { SNAP_REPOSITORY="$work/repo-snap-key" SNAP_KEY_FILE="$work/snap.key" snap "$@"; }

read_and_hash() {
    find "$src" -type f -print0 | xargs -0 cat > /dev/null
    find "$src" -type f -print0 | xargs -0 b3sum > /dev/null
}

init() {
    case $1 in
        snap) snap init ;;
        snap-key) snapk init ;;
        restic) restic init ;;
        rustic) rustic init ;;
        borg) borg init -e repokey-blake2 ;;
        bupstash) bupstash new-key -o "$BUPSTASH_KEY" && bupstash init ;;
    esac
}

backup() {
    case $1 in
        snap) snap create "$src" ;;
        snap-key) snapk create "$src" ;;
        restic) restic backup "$src" ;;
        rustic) rustic backup "$src" ;;
        borg) borg create "::b$(date +%s%N)" "$src" ;;
        bupstash) bupstash put "$src" ;;
    esac
}

latest_borg() { borg list --short --last 1; }
latest_bupstash() { bupstash list --format=jsonl1 | tail -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

# restore TOOL TARGET [SUBFOLDER]: the snapshot's copy of "$src[/SUBFOLDER]" lands in TARGET.
restore() {
    local tool=$1 target=$2 sub=${3:-}
    mkdir -p "$target"
    case $tool in
        baseline) cp -a "$src/." "$target" ;;
        snap) snap restore latest -t "$target" ${sub:+--include "$sub"} ;;
        snap-key) snapk restore latest -t "$target" ${sub:+--include "$sub"} ;;
        restic) restic restore latest --target "$target" ${sub:+--include "$src/$sub"} ;;
        rustic) rustic restore "latest:$src${sub:+/$sub}" "$target" ;;
        borg) (cd "$target" && borg extract "::$(latest_borg)" ${sub:+"${src#/}/$sub"}) ;;
        bupstash) bupstash restore --into "$target" ${sub:+--pick "$sub"} "id=$(latest_bupstash)" ;;
    esac
}

# Where a tool's full restore put the folder's contents.
restored_root() {
    case $1 in
        restic | borg) echo "$2$src" ;;
        *) echo "$2" ;;
    esac
}

check_data() {
    case $1 in
        snap) snap check --read-data ;;
        snap-key) snapk check --read-data ;;
        restic) restic check --read-data ;;
        rustic) rustic check --read-data ;;
        borg) borg check --verify-data ;;
        bupstash) echo "bupstash has no command that verifies stored data" >&2; return 1 ;;
    esac
}

if [ "${1:-}" = "__run" ]; then
    shift
    "$@"
    exit
fi

tools=()
for t in snap restic borg rustic bupstash; do
    if command -v "$t" >/dev/null; then tools+=("$t"); else echo "skipping $t: not installed" | tee -a "$work/skipped"; fi
    if [ "$t" = snap ]; then tools+=(snap-key); fi
done

echo "generating a $size phone folder in $work"
"$gen" generate "$src" "$size"
warm
measure "baseline read+hash" baseline read_and_hash

# The initial backup writes the most and varies most with the machine's page-cache state, so it
# runs three times per tool, into fresh repositories, in a rotated order; the median is shown.
rounds=3
for round in $(seq 1 "$rounds"); do
    n=${#tools[@]}
    for i in $(seq 0 $((n - 1))); do
        t=${tools[$(((i + round - 1) % n))]}
        forget_tool "$t"
        warm
        measure init "$t" init "$t"
        warm "$t"
        measure "initial backup" "$t" backup "$t"
    done
done
unchanged() { warm "$1"; measure "unchanged backup" "$1" backup "$1"; }
repeat "unchanged backup" 3 unchanged
# /usr/bin/time counts hundredths of a second, too coarse for a step of a few milliseconds:
# where hyperfine is installed the unchanged backup is also timed as the mean of 10 runs.
if command -v hyperfine > /dev/null; then
    runs=()
    for t in "${tools[@]}"; do runs+=(-n "$t" "bash $self __run backup $t"); done
    hyperfine -N -w 1 -r 10 --export-json "$work/unchanged.json" "${runs[@]}" > /dev/null 2>&1 \
        || echo "FAILED: hyperfine of the unchanged backup" | tee -a "$work/failures"
else
    echo "skipping the fine-grained unchanged backup: hyperfine is not installed" | tee -a "$work/skipped"
fi
for day in $(seq 1 "$days"); do
    "$gen" grow "$src" "$day" "$size" > /dev/null
    for t in "${tools[@]}"; do warm "$t"; measure "day $day backup" "$t" backup "$t"; done
done
cp -a "$src" "$src.again" && rm -rf "$src" && mv "$src.again" "$src"
for t in "${tools[@]}"; do warm "$t"; measure "re-pulled backup" "$t" backup "$t"; done

full_restore() {
    rm -rf "$work/out"
    warm "$1"
    measure "full restore" "$1" restore "$1" "$work/out"
    if ! diff -r "$src" "$(restored_root "$1" "$work/out")" > /dev/null 2>&1; then
        echo "RESTORE MISMATCH: $1" | tee -a "$work/failures"
    fi
    rm -rf "$work/out"
}
folder_restore() {
    rm -rf "$work/out"
    warm "$1"
    measure "one-folder restore" "$1" restore "$1" "$work/out" DCIM/Camera
    rm -rf "$work/out"
}
data_check() { warm "$1"; measure "full data check" "$1" check_data "$1"; }
# `cp -a` of the folder takes its turn among the restores, as the "baseline" row.
peers_only=("${tools[@]}")
tools=(baseline "${peers_only[@]}")
repeat "full restore" 3 full_restore
tools=("${peers_only[@]}")
repeat "one-folder restore" 3 folder_restore
repeat "full data check" 3 data_check

python3 - "$results" "$work" <<'PY'
import sys, collections, os
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
steps = list(dict.fromkeys(r[0] for r in rows))
samples = collections.defaultdict(lambda: collections.defaultdict(list))
for step, tool, wall, cpu, rss, size in rows:
    samples[step][tool].append((float(wall), float(cpu), int(rss) / 1024, int(size) / 1e6))
# Steps measured several times report the run with the median wall time.
by = {step: {tool: sorted(runs)[len(runs) // 2] for tool, runs in tools.items()} for step, tools in samples.items()}
print("Steps marked * are the median of several runs.\n")
print("| step | tool | wall s | CPU s | peak RSS MB | repo MB | snap / best peer (wall, RSS) |")
print("|---|---|---|---|---|---|---|")
for step in steps:
    peers = {t: v for t, v in by[step].items() if not t.startswith("snap") and t != "baseline"}
    for tool, (w, c, m, s) in sorted(by[step].items(), key=lambda kv: kv[1][0]):
        ratio = ""
        if tool.startswith("snap") and peers:
            best_wall = min(v[0] for v in peers.values())
            best_rss = min(v[2] for v in peers.values())
            ratio = f"{w / best_wall:.2f}x, {m / best_rss:.2f}x" if best_wall > 0 and best_rss > 0 else ""
        mark = "*" if len(samples[step][tool]) > 1 else ""
        print(f"| {step}{mark} | {tool} | {w:.2f} | {c:.2f} | {m:.0f} | {s:.1f} | {ratio} |")
fine = os.path.join(sys.argv[2], "unchanged.json")
if os.path.exists(fine):
    import json
    res = {r["command"]: r for r in json.load(open(fine))["results"]}
    best = min((r["mean"] for t, r in res.items() if not t.startswith("snap")), default=0)
    print("\nUnchanged backup, mean of 10 runs (hyperfine; each run includes starting bash):\n")
    print("| tool | wall ms | ± ms | user ms | system ms | snap / best peer |")
    print("|---|---|---|---|---|---|")
    for t, r in sorted(res.items(), key=lambda kv: kv[1]["mean"]):
        ratio = f"{r['mean'] / best:.2f}x" if t.startswith("snap") and best > 0 else ""
        print(f"| {t} | {r['mean'] * 1e3:.1f} | {r['stddev'] * 1e3:.1f} | {r['user'] * 1e3:.1f} | {r['system'] * 1e3:.1f} | {ratio} |")
for f in ("skipped", "failures"):
    p = os.path.join(sys.argv[2], f)
    if os.path.exists(p):
        print(f"\n{f}:\n" + open(p).read())
PY
