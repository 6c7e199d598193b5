#!/usr/bin/env bash
# Checks the allocation protocol's model (model/allocation.pml) with spin, exhaustively, in each
# configuration; fails on any violation and prints the counterexample in the project's terms.
# What the model covers and how it maps to the code: docs/model-check.md.
#
#   scripts/model-check.sh                   the CI configurations
#   scripts/model-check.sh --full            also crash and stall in one run, and four leases
#   scripts/model-check.sh --config NAME     one configuration (see CONFIGS below)
#   scripts/model-check.sh ... -DNO_TURN     extra spin defines for every run (broken variants)
#
# Environment: MODEL_CHECK_MEMLIM (MiB for the state store, default 4096); MODEL_CHECK_OPT (gcc's
# optimisation level for the verifier, default -O2: a search that ends within a couple of million
# states is over before -O2's extra compile time pays back, so the broken variants' test asks for -O0);
# MODEL_CHECK_ORDER (default or reverse: the order the depth-first search tries the processes in;
# a full search visits the same states either way, but a violation may lie far nearer one end).
set -euo pipefail
cd "$(dirname "$0")/.."
model="$PWD/model/allocation.pml"

# name|spin defines|what it adds[|cycles: look for non-progress cycles under weak fairness instead]
CONFIGS=(
  "crash|-DMAXCRASH=1 -DMAXSTALL=0|a server killed at any step, or a wake-up lost"
  "crash-exclusive|-DMAXCRASH=1 -DMAXSTALL=0 -DL0_EXCLUSIVE -DQUOTA1=3|the same, L0 and the gang competing for R0 (no quota)"
  "stall|-DMAXCRASH=0 -DMAXSTALL=1|a claim expiring while its server still runs the job"
  "epoch|-DEPOCH -DMAXCRASH=1 -DMAXSTALL=0 -DL0_EXCLUSIVE -DQUOTA1=3|crash-exclusive with the capacity epoch (patient waits skipped)"
  "epoch-big|-DEPOCH -DBIG -DMAXCRASH=0 -DMAXSTALL=0 -DL0_EXCLUSIVE -DQUOTA1=3|four leases, three of them for R0, with the capacity epoch"
  "midpass|-DMIDPASS -DNO_HEALTH -DBIG -DMAXCRASH=0 -DMAXSTALL=0 -DL0_EXCLUSIVE -DQUOTA1=3|the same leases, each try reading the pool afresh (a release may commit mid-pass); no health check"
  "epoch-midpass|-DEPOCH -DMIDPASS -DNO_HEALTH -DBIG -DMAXCRASH=0 -DMAXSTALL=0 -DL0_EXCLUSIVE -DQUOTA1=3|midpass with the capacity epoch"
  "epoch-midpass-shapes|-DEPOCH -DMIDPASS -DNO_HEALTH -DBIG -DL3_OTHER_SHAPE -DMAXCRASH=0 -DMAXSTALL=0 -DL0_EXCLUSIVE -DQUOTA1=3|epoch-midpass, L0 and L3 of different shapes (no probe between them)"
)
FULL_CONFIGS=(
  "crash-stall|-DMAXCRASH=1 -DMAXSTALL=1|a stall and a crash in one run"
  "big|-DBIG -DMAXCRASH=1 -DMAXSTALL=0|a fourth lease, of another owner"
  "fair-cycles|-DMAXCRASH=0 -DMAXSTALL=0|no livelock: no cycle of steps that every process keeps taking|cycles"
  "midpass-health|-DMIDPASS -DBIG -DMAXCRASH=0 -DMAXSTALL=0 -DL0_EXCLUSIVE -DQUOTA1=3|midpass with a failing health check"
  "epoch-midpass-health|-DEPOCH -DMIDPASS -DBIG -DMAXCRASH=0 -DMAXSTALL=0 -DL0_EXCLUSIVE -DQUOTA1=3|epoch-midpass with a failing health check (about 7 GB of state store)"
)

selected=()
extra=()
full=false
while [ $# -gt 0 ]; do
  case "$1" in
    --full) full=true ;;
    --config)
      shift
      selected+=("${1:?--config needs a name}")
      ;;
    -D*) extra+=("$1") ;;
    *)
      echo "model-check: unknown argument $1" >&2
      exit 2
      ;;
  esac
  shift
done

for tool in spin gcc; do
  if ! command -v "$tool" >/dev/null; then
    echo "model-check: '$tool' is not installed; install it with: apt-get install -y spin gcc libc6-dev" >&2
    exit 2
  fi
done

case "${MODEL_CHECK_ORDER:-default}" in
  default) order=() ;;
  reverse) order=(-DREVERSE) ;;
  *)
    echo "model-check: MODEL_CHECK_ORDER must be default or reverse, not '${MODEL_CHECK_ORDER}'" >&2
    exit 2
    ;;
esac

case "${MODEL_CHECK_OPT:--O2}" in
  -O0 | -O1 | -O2 | -O3 | -Os) ;;
  *)
    echo "model-check: MODEL_CHECK_OPT must be one of -O0 -O1 -O2 -O3 -Os, not '${MODEL_CHECK_OPT}'" >&2
    exit 2
    ;;
esac

configs=("${CONFIGS[@]}")
if $full || [ ${#selected[@]} -gt 0 ]; then configs+=("${FULL_CONFIGS[@]}"); fi
if [ ${#selected[@]} -gt 0 ]; then
  chosen=()
  for name in "${selected[@]}"; do
    found=false
    for config in "${configs[@]}"; do
      if [ "${config%%|*}" = "$name" ]; then
        chosen+=("$config")
        found=true
      fi
    done
    $found || {
      echo "model-check: no configuration named $name" >&2
      exit 2
    }
  done
  configs=("${chosen[@]}")
fi

# 2^26 hash slots (512 MiB of the state store): the CI configurations store tens of millions of
# states, and with 2^24 slots the search spent its time walking long chains of them.
hash=26

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$model" "$work/allocation.pml"

# The counterexample in the project's words: the model's narration (printf lines starting @@),
# with job numbers, statuses and property numbers named, then the leases as the trail leaves them.
translate() {
  local nl="$1"
  awk -v nl="$nl" '
    function job(n) {
      if (n == 0) return "pass:host"
      if (n <= nl) return "lease:" (n - 1)
      return "resource:R" (n - 1 - nl)
    }
    function status(s) {
      split("PENDING ACQUIRED ACTIVE RELEASED BROKEN DESTROYED", names, " ")
      return s == 0 ? "not requested" : names[s]
    }
    function leases(mask,   i, out) {
      out = ""
      for (i = 0; i < nl; i++) if (int(mask / 2 ^ i) % 2 == 1) out = out (out == "" ? "" : ", ") "lease " i
      return out == "" ? "none" : out
    }
    BEGIN {
      property[1] = "a lease status moved off the state machine (state-machines.ts)"
      property[2] = "a lease was written by a transaction that did not hold its row lock"
      property[3] = "two writers of one lease at the same time (single writer)"
      property[4] = "greedy policy order: a lease was granted what a lease ahead of it could have used"
      property[5] = "a grant was written onto a resource that is no longer open (StalePlan not detected)"
      property[6] = "two leases hold the exclusive resource R0 (two holders of one slot)"
      property[7] = "more live resources than the blueprint'"'"'s concurrent-resource limit"
      property[8] = "an owner holds more live leases than its quota"
      property[9] = "a gang holds some parts while another part waits (not all or none)"
      property[10] = "liveness: when nothing could move any more, a lease had not ended (it waited forever)"
    }
    /^ *@@ / {
      sub(/^ *@@ /, "")
      while (match($0, /job [0-9]+/)) {
        n = substr($0, RSTART + 4, RLENGTH - 4)
        $0 = substr($0, 1, RSTART - 1) "job " job(n + 0) substr($0, RSTART + RLENGTH)
      }
      if (match($0, /\(claim before: [0-9]+\)/)) {
        c = substr($0, RSTART + 15, RLENGTH - 16) + 0
        note = c == 0 ? "" : c == 9 ? " (its earlier claim had expired)" : " (still claimed by p" c ")"
        $0 = substr($0, 1, RSTART - 2) note substr($0, RSTART + RLENGTH)
      }
      if (match($0, /heads [0-9]+ \(bit i = lease i\)/)) {
        split(substr($0, RSTART, RLENGTH), w, " ")
        $0 = substr($0, 1, RSTART - 1) "heads " leases(w[2] + 0) substr($0, RSTART + RLENGTH)
      }
      if (match($0, /-> status [0-9]+/)) {
        s = substr($0, RSTART + 10, RLENGTH - 10) + 0
        $0 = substr($0, 1, RSTART - 1) "-> " status(s) substr($0, RSTART + RLENGTH)
      }
      if (match($0, /^VIOLATED: property [0-9]+/)) {
        p = substr($0, 20) + 0
        $0 = "VIOLATED: " property[p]
      }
      gsub(/->5/, "->new resource"); gsub(/->7/, "->none")
      gsub(/->0/, "->R0"); gsub(/->1/, "->R1"); gsub(/->2/, "->R2")
      gsub(/lease\+1: 0/, "lease+1: none"); gsub(/R0, owner/, "none, owner"); gsub(/resource: R0\)/, "resource: none)"); gsub(/held by R0,/, "held by none,")
      printf "  %3d. %s\n", ++step, $0
      next
    }
    /START OF CYCLE/ { print "       --- from here on, these steps repeat forever ---" }
    /trail ends after/ { ended = 1; print "  final state:" }
    ended && /^[\t ]+ls\[[0-9]+\] = [0-9]+/ {
      match($0, /\[[0-9]+\]/); i = substr($0, RSTART + 1, RLENGTH - 2)
      split($0, kv, "= "); printf "    lease %d: %s\n", i, status(kv[2] + 0)
    }
  '
}

failed=0
for config in "${configs[@]}"; do
  IFS='|' read -r name defines what mode <<<"$config"
  # shellcheck disable=SC2206 # the defines are words on purpose
  flags=($defines "${extra[@]}")
  nl=3
  [[ " ${flags[*]} " == *" -DBIG "* ]] && nl=4
  echo "== model ${name}: ${what} ${extra[*]}"
  (
    cd "$work"
    rm -f allocation.pml.trail pan pan.*
    spin "${flags[@]}" -a allocation.pml >spin.log 2>&1 || {
      cat spin.log
      exit 3
    }
    start=$(date +%s.%N)
    if [ "$mode" = cycles ]; then
      # Every state of the model is transient (statuses only move forward, clients act once),
      # so any cycle is a livelock; -f keeps only those where every enabled process gets to run.
      gcc "${MODEL_CHECK_OPT:--O2}" -w "${order[@]}" -DNP -DNFAIR=4 -DNOREDUCE -DCOLLAPSE -DMEMLIM="${MODEL_CHECK_MEMLIM:-4096}" -o pan pan.c
      ./pan -l -f -m1000000 -w"$hash" >pan.log 2>&1 || true
    else
      gcc "${MODEL_CHECK_OPT:--O2}" -w "${order[@]}" -DSAFETY -DCOLLAPSE -DMEMLIM="${MODEL_CHECK_MEMLIM:-4096}" -o pan pan.c
      ./pan -m1000000 -w"$hash" >pan.log 2>&1 || true
    fi
    end=$(date +%s.%N)
    states=$(awk '/states, stored/ { print $1; exit }' pan.log)
    seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    if grep -q "errors: 0" pan.log && ! grep -qE "Search not completed|max search depth too small" pan.log; then
      echo "   ok: ${states} states, ${seconds} s, no violation"
      exit 0
    fi
    if [ -f allocation.pml.trail ]; then
      echo "   VIOLATION (${states:-?} states searched, ${seconds} s); the counterexample:"
      spin "${flags[@]}" -t allocation.pml 2>&1 | translate "$nl"
      grep -m1 -E "assertion violated|invalid end state|non-progress cycle" pan.log | sed 's/^/   spin: /'
    else
      echo "   the search did not complete (raise MODEL_CHECK_MEMLIM?):"
      grep -E "error|Search not completed|max search depth|memory" pan.log | sed 's/^/   /'
    fi
    exit 1
  ) || failed=1
done
exit "$failed"
