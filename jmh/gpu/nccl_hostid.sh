#!/usr/bin/env bash
# The NCCL_HOSTID experiment (issue 5): can P processes share one GPU as P NCCL ranks?
#
#   jmh/gpu/nccl_hostid.sh [OUT_DIR]      (default: $OUT, else .gpu/out); writes OUT_DIR/nccl-hostid/
#
# NCCL refuses two ranks of one communicator on one GPU ("Duplicate GPU detected"). Giving every process
# its own NCCL_HOSTID makes each look like a host of its own, so NCCL connects them through its socket
# transport on loopback (NCCL_SOCKET_IFNAME=lo, NCCL_IB_DISABLE=1, NCCL_NET=Socket); NCCL >= 2.30 also
# has NCCL_MULTI_RANK_GPU_ENABLE=1. Steps, each logged, none fatal to the script:
#   1. a random bf16 input (S=4096, h=8, d=64, q/k/v/do);
#   2. the reference: one process, ./usp4j attention on cuda (single-device cuDNN SDPA, forward+backward);
#   3. the control: 2 processes on GPU 0 without NCCL_HOSTID (expected: NCCL refuses, every rank exits 1);
#   4. the experiment: ./usp4j launch --nproc-per-node 4 of ./usp4j attention --ulysses 2 --ring 2, all on
#      GPU 0 (CUDA_VISIBLE_DEVICES=0), each process with NCCL_HOSTID=usp4j-hostid-<local rank>;
#   5. when it ran: its output against the reference (compare_safetensors.py) and its per-rank report;
#   6. then ./usp4j bench on the same four processes (USP 2x2, 16K tokens), for per-rank times and bytes.
# On the GPU machine .ci/gpu-suite runs it with USP4J_JAVA_HOME, USP4J_JAR, USP4J_NO_BUILD and the
# USP4J_*_PATH library locations set. The result line goes to OUT_DIR/nccl-hostid/result.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${1:-${OUT:-.gpu/out}}/nccl-hostid"
mkdir -p "$out"
usp4j=(./usp4j)
in="$out/in.safetensors"
attention=(attention --backend cuda --causal --layout zigzag --backward --input "$in")
result() { echo "$*" | tee "$out/result.txt"; }
step() { echo; echo "== $*"; }

step "versions"
"${usp4j[@]}" info 2>&1 | head -n 40

step "1. input"
if ! "${usp4j[@]}" random-input --seq 4096 --heads 8 --head-dim 64 --dtype bf16 --seed 5 --output "$in"; then
  result "nccl-hostid: could not write the input (see the log)"; exit 0
fi

step "2. reference: one process, single-device SDPA"
if ! timeout 300 "${usp4j[@]}" "${attention[@]}" --output "$out/reference.safetensors"; then
  result "nccl-hostid: the single-process reference failed (see the log)"; exit 0
fi

# Every process sees only GPU 0; NCCL talks over sockets on loopback.
export CUDA_VISIBLE_DEVICES=0 NCCL_SOCKET_IFNAME=lo NCCL_IB_DISABLE=1 NCCL_NET=Socket NCCL_MULTI_RANK_GPU_ENABLE=1
export NCCL_DEBUG="${NCCL_DEBUG:-WARN}" USP4J_TIMEOUT="${USP4J_TIMEOUT:-90}"

step "3. control: 2 processes on GPU 0, no NCCL_HOSTID (expected: refused)"
timeout 300 "${usp4j[@]}" launch --nproc-per-node 2 -- "${usp4j[@]}" "${attention[@]}" --ring 2 \
    --output "$out/control.safetensors" > "$out/control.log" 2>&1
control=$?
tail -n 20 "$out/control.log"
echo "control exit $control"

step "4. experiment: 4 processes on GPU 0, one NCCL_HOSTID each, USP 2x2"
# The launcher gives every process the same environment; bash -c adds the per-process host id.
start=$(date +%s)
timeout 420 "${usp4j[@]}" launch --nproc-per-node 4 -- bash -c \
    'NCCL_HOSTID="usp4j-hostid-$USP4J_LOCAL_RANK" exec "$0" "$@"' "${usp4j[@]}" "${attention[@]}" \
    --ulysses 2 --ring 2 --output "$out/usp-2x2.safetensors" --report "$out/usp-2x2-report.json" \
    > "$out/experiment.log" 2>&1
experiment=$?
tail -n 40 "$out/experiment.log"
echo "experiment exit $experiment after $(( $(date +%s) - start )) s"

if [ "$experiment" -ne 0 ]; then
  step "4b. the same with NCCL_DEBUG=INFO (first lines), to see what NCCL said"
  NCCL_DEBUG=INFO USP4J_TIMEOUT=60 timeout 300 "${usp4j[@]}" launch --nproc-per-node 4 -- bash -c \
      'NCCL_HOSTID="usp4j-hostid-$USP4J_LOCAL_RANK" exec "$0" "$@"' "${usp4j[@]}" "${attention[@]}" \
      --ulysses 2 --ring 2 --output "$out/usp-2x2-debug.safetensors" > "$out/experiment-debug.log" 2>&1
  echo "debug run exit $?"
  grep -E "NCCL (WARN|INFO) (Bootstrap|NET|Channel|comm|Duplicate|Using|init|cudaDev|.*[Ee]rror)" \
      "$out/experiment-debug.log" | head -n 60
  result "nccl-hostid: control exit $control (expected non-zero); 4 processes on one GPU with NCCL_HOSTID" \
      "FAILED (exit $experiment), see nccl-hostid/experiment*.log"
  exit 0
fi

step "5. USP 2x2 over 4 NCCL processes vs single-device SDPA"
python3 jmh/gpu/compare_safetensors.py "$out/reference.safetensors" "$out/usp-2x2.safetensors" \
    out=1e-2 lse=1e-4 dq=2e-2 dk=2e-2 dv=2e-2
compared=$?
cat "$out/usp-2x2-report.json"

step "6. the multi-process bench on the same 4 processes (USP 2x2, 16K tokens)"
timeout 300 "${usp4j[@]}" launch --nproc-per-node 4 -- bash -c \
    'NCCL_HOSTID="usp4j-hostid-$USP4J_LOCAL_RANK" exec "$0" "$@"' "${usp4j[@]}" bench --seq 16384 --mesh 2x2 \
    --repeat 3 > "$out/bench-2x2.log" 2>&1
echo "bench exit $?"; tail -n 12 "$out/bench-2x2.log"
if [ "$compared" -eq 0 ]; then
  result "nccl-hostid: control exit $control (expected non-zero); 4 processes on one GPU with NCCL_HOSTID ran" \
      "USP 2x2 and matched single-device SDPA (see nccl-hostid/)"
else
  result "nccl-hostid: control exit $control; 4 processes on one GPU with NCCL_HOSTID ran USP 2x2 but the" \
      "results DIFFER from single-device SDPA (exit $compared, see nccl-hostid/)"
fi
exit 0
