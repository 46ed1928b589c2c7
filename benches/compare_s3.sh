#!/usr/bin/env bash
# Backup and restore over S3 against a local-folder repository, and against restic's and
# rustic's S3 support, on one S3 server on 127.0.0.1 (s3s-fs, started here) and one generated
# phone folder. Steps per tool: init, initial backup, unchanged backup, full restore (verified
# with diff -r), one-folder restore. Each measured step runs ROUNDS times; the table shows the
# median. "server PUT" and "server GET" rows time plain curl moving the same packs, the
# most any client could reach on that server.
#
#   bash benches/compare_s3.sh [small|gigabyte] [ROUNDS]      (default: gigabyte 3)
#
# Needs: s3s-fs (cargo install --locked s3s-fs@0.14.1 --features binary); restic and rustic
# are optional (apt-get install restic; cargo install --locked rustic-rs) and skipped if absent.
# To use another server instead (Garage, MinIO), set S3_BENCH_ENDPOINT, S3_BENCH_BUCKET (an
# existing bucket), S3_BENCH_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
set -euo pipefail
size="${1:-gigabyte}"
rounds="${2:-3}"
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin snap --example phone_folder
export PATH="$PWD/target/release:$HOME/.cargo/bin:$PATH"
gen="$PWD/target/release/examples/phone_folder"
work="$(mktemp -d "${TMPDIR:-/tmp}/snap-s3-compare.XXXXXX")"
if [ -n "${S3_BENCH_ENDPOINT:-}" ]; then
    endpoint=$S3_BENCH_ENDPOINT bucket=${S3_BENCH_BUCKET:?} region=${S3_BENCH_REGION:-us-east-1}
    trap 'rm -rf "$work"' EXIT
else
    command -v s3s-fs > /dev/null || { echo "s3s-fs is not installed" >&2; exit 1; }
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    bucket=bench region=us-east-1
    mkdir -p "$work/server/$bucket"
    s3s-fs --host 127.0.0.1 --port "$port" --access-key BENCHKEY --secret-key BENCHSECRET "$work/server" > /dev/null 2>&1 &
    server=$!
    trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
    endpoint="http://127.0.0.1:$port"
    export AWS_ACCESS_KEY_ID=BENCHKEY AWS_SECRET_ACCESS_KEY=BENCHSECRET
fi
export AWS_DEFAULT_REGION=$region SNAP_S3_REGION=$region
# Every round writes fresh repositories below a prefix of its own.
prefix="b$(date +%s)"
export round=1
export SNAP_PASSWORD=bench RESTIC_PASSWORD=bench RUSTIC_PASSWORD=bench XDG_CACHE_HOME="$work/cache"
export XDG_CONFIG_HOME="$work/config"
mkdir -p "$XDG_CONFIG_HOME/rustic"
rustic_profile() {
    cat > "$XDG_CONFIG_HOME/rustic/s3bench.toml" << EOF
[repository]
repository = "opendal:s3"
password = "bench"
[repository.options]
endpoint = "$endpoint"
bucket = "$bucket"
root = "/$prefix-$round/rustic"
region = "$region"
access_key_id = "$AWS_ACCESS_KEY_ID"
secret_access_key = "$AWS_SECRET_ACCESS_KEY"
EOF
}
rustic_profile
src="$work/phone"
"$gen" generate "$src" "$size" > /dev/null
results="$work/results.tsv"
: > "$results"

tools=(snap-local snap-s3)
for peer in restic rustic; do
    if command -v $peer > /dev/null; then tools+=("$peer-s3"); else echo "skipped: $peer is not installed"; fi
done

run() {
    local tool=$1
    shift
    case $tool in
        snap-local) SNAP_REPOSITORY="$work/repo-local-$round" snap "$@" ;;
        snap-s3) SNAP_REPOSITORY="s3:$endpoint/$bucket/$prefix-$round/snap" snap "$@" ;;
        restic-s3) restic -r "s3:$endpoint/$bucket/$prefix-$round/restic" "$@" ;;
        rustic-s3) rustic -P s3bench "$@" ;;
    esac
}

init() { run "$1" init; }
backup() { case $1 in snap*) run "$1" create "$src" ;; *) run "$1" backup "$src" ;; esac; }
restore() {
    local tool=$1 target=$2 sub=${3:-}
    case $tool in
        snap*) run "$tool" restore latest -t "$target" ${sub:+--include "$sub"} ;;
        restic-s3) run "$tool" restore latest --target "$target" ${sub:+--include "$src/$sub"} ;;
        rustic-s3) run "$tool" restore "latest:$src${sub:+/$sub}" "$target" ;;
    esac
}
# The server's own ceiling: the bytes of snap's packs uploaded and fetched with plain curl, four
# at a time, with no client work at all ("server PUT/GET" rows).
curl_s3() {
    curl -fsS -o /dev/null -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" --aws-sigv4 "aws:amz:$region:s3" \
        --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$@"
}
raw() {
    find "$work/repo-local-$round/data" -type f | xargs -P 4 -I{} bash -c '
        url="$endpoint/$bucket/$prefix-raw-$round/$(basename "$2")"
        if [ "$1" = put ]; then curl_s3 -T "$2" "$url"; else curl_s3 "$url"; fi' _ "$1" {}
}
raw_ceiling=no
curl --help all 2> /dev/null | grep -q aws-sigv4 && raw_ceiling=yes || echo "skipped: the server ceiling needs curl 7.75 or later"
export work endpoint src bucket prefix region
export -f run init backup restore curl_s3 raw
restored_root() { case $1 in restic-s3) echo "$2$src" ;; *) echo "$2" ;; esac; }

measure() {
    local step=$1 tool=$2
    shift 2
    sync
    if ! /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/step.out" 2> "$work/err"; then
        echo "FAILED: $tool $step: $(tail -n 3 "$work/err")"
        return 0
    fi
    read -r wall rss < "$work/time"
    printf '%s\t%s\t%s\t%s\n' "$step" "$tool" "$wall" "$rss" >> "$results"
}

find "$src" -type f -print0 | xargs -0 cat > /dev/null
for tool in "${tools[@]}"; do
    measure init "$tool" bash -c "init $tool"
done
for round in $(seq 1 "$rounds"); do
    rustic_profile
    for tool in "${tools[@]}"; do
        # A fresh repository for every initial backup, so each round measures the same work.
        if [ "$round" -gt 1 ]; then
            rm -rf "$XDG_CACHE_HOME"
            run "$tool" init > /dev/null 2>&1
        fi
        measure "initial backup" "$tool" bash -c "backup $tool"
    done
    if [ $raw_ceiling = yes ]; then measure "initial backup" "server PUT" bash -c "raw put"; fi
done
# The later steps use the last round's repositories.
for _ in $(seq 1 "$rounds"); do
    for tool in "${tools[@]}"; do
        measure "unchanged backup" "$tool" bash -c "backup $tool"
    done
done
for _ in $(seq 1 "$rounds"); do
    for tool in "${tools[@]}"; do
        rm -rf "$work/out"
        mkdir -p "$work/out"
        measure "full restore" "$tool" bash -c "restore $tool $work/out"
        diff -r "$src" "$(restored_root "$tool" "$work/out")" > /dev/null || echo "MISMATCH: $tool restore differs"
        rm -rf "$work/out"
        mkdir -p "$work/out"
        measure "one-folder restore" "$tool" bash -c "restore $tool $work/out DCIM/Camera"
    done
    if [ $raw_ceiling = yes ]; then measure "full restore" "server GET" bash -c "raw get"; fi
done
rm -rf "$work/out"

python3 - "$results" << 'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    step, tool, wall, rss = line.rstrip("\n").split("\t")
    rows.setdefault((step, tool), []).append((float(wall), int(rss)))
steps = []
for step, _ in rows:
    if step not in steps:
        steps.append(step)
print("| step | tool | wall s | peak RSS MB | vs snap-local (wall) |")
print("|---|---|---|---|---|")
for step in steps:
    tools = [t for (s, t) in rows if s == step]
    med = {t: (statistics.median(w for w, _ in rows[(step, t)]), statistics.median(m for _, m in rows[(step, t)])) for t in tools}
    base = med.get("snap-local", (0, 0))[0]
    for t in sorted(tools, key=lambda t: med[t][0]):
        w, m = med[t]
        ratio = f"{w / base:.2f}x" if base > 0 else ""
        print(f"| {step} | {t} | {w:.2f} | {m / 1024:.0f} | {ratio} |")
EOF
