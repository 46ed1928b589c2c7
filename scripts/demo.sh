#!/usr/bin/env bash
# snap's main job, end to end: generate a phone folder, back it up into an encrypted local
# repository, grow it by a day and back it up again, restore everything into a new folder,
# compare byte for byte, and verify every stored byte.
#   bash scripts/demo.sh [small|gigabyte]      (default small, ~12 MB; gigabyte is ~1.1 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-small}"
cargo build --release --quiet --bin snap --example phone_folder
snap=target/release/snap
gen=target/release/examples/phone_folder
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export SNAP_REPOSITORY="$work/repo" SNAP_PASSWORD="demo password"

echo "== generating a $size phone folder"
"$gen" generate "$work/phone" "$size"
echo "== snap init";                 "$snap" init
echo "== snap create (first backup)"; "$snap" create "$work/phone"
echo "== a day passes";               "$gen" grow "$work/phone" 1 "$size"
echo "== snap create (next day)";     "$snap" create "$work/phone"
echo "== snap snapshots";             "$snap" snapshots
echo "== snap diff";                  "$snap" diff "$("$snap" --json snapshots | grep -m1 '"id"' | cut -d'"' -f4)" latest | tail -n 3
echo "== snap restore";               "$snap" restore latest --target "$work/new-phone"
echo "== comparing";                  diff -r "$work/phone" "$work/new-phone" && echo "restored tree is identical"
echo "== snap check --read-data";     "$snap" check --read-data
echo "== snap stats";                 "$snap" stats
