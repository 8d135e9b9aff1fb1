#!/bin/bash
# The MPI benchmarks (bench/mpi_bench.c) over the mesh, each service its own process and two
# executors that each admit MAX calls (argument 1, default 1), so a world of 2 * MAX ranks
# spans both; beside each round, the floor of a hop (bench/grpc_floor.py). Release build first:
#   cargo build --release -p fwasm --bin fwasm && bench/mpi-mesh.sh 1 && bench/mpi-mesh.sh 2
set -e
cd "$(dirname "$0")/.."
F=target/release/fwasm
$F build bench/mpi_bench.c -o /tmp/mpi_bench.wasm > /dev/null
MAX=${1:-1}
rm -rf /tmp/mpi-mesh-data
pids=()
$F state --listen 127.0.0.1:17000 --data-dir /tmp/mpi-mesh-data > /tmp/mesh-state.log 2>&1 & pids+=($!)
sleep 0.5
$F scheduler --listen 127.0.0.1:17001 --state 127.0.0.1:17000 > /tmp/mesh-sched.log 2>&1 & pids+=($!)
sleep 0.5
$F executor --listen 127.0.0.1:17101 --id e1 --max-calls $MAX --state 127.0.0.1:17000 --scheduler 127.0.0.1:17001 > /tmp/mesh-e1.log 2>&1 & pids+=($!)
$F executor --listen 127.0.0.1:17102 --id e2 --max-calls $MAX --state 127.0.0.1:17000 --scheduler 127.0.0.1:17001 > /tmp/mesh-e2.log 2>&1 & pids+=($!)
$F gateway --state 127.0.0.1:17000 --scheduler 127.0.0.1:17001 --invoke-port 18080 --upload-port 18002 --grpc-port 18081 > /tmp/mesh-gw.log 2>&1 & pids+=($!)
trap 'kill ${pids[@]}' EXIT
sleep 2
$F upload bench/mpi /tmp/mpi_bench.wasm --addr http://127.0.0.1:18081 >/dev/null
run() { echo "$1 | $2 | $($F invoke bench/mpi --mpi $1 --input "$2" --addr http://127.0.0.1:18081)"; }
# The floor of a hop, in the same run: a unary gRPC call to an executor (Python's grpcio, from
# the test venv scripts/test makes).
PY=${FWASM_TEST_PYTHON:-$HOME/.cache/fwasm-tests/venv/bin/python}
floor() { "$PY" bench/grpc_floor.py 127.0.0.1:17101 2000; }
for round in 1 2; do
  floor
  if [ "$MAX" = 1 ]; then
    run 2 "pingpong 2000 8"
    run 2 "pingpong 100 1048576"
  else
    run 4 "allreduce 2000"
  fi
done
ID=$($F invoke bench/mpi --mpi $((MAX*2)) --input "allreduce 100" --async --addr http://127.0.0.1:18081 2>/dev/null)
$F status $ID --wait --addr http://127.0.0.1:18081
