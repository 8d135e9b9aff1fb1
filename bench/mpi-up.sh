#!/bin/bash
# The MPI benchmarks (bench/mpi_bench.c) in `fwasm up`, twice each; release build first:
#   cargo build --release -p fwasm --bin fwasm && bench/mpi-up.sh
set -e
cd "$(dirname "$0")/.."
F=target/release/fwasm
$F build bench/mpi_bench.c -o /tmp/mpi_bench.wasm > /dev/null
rm -rf /tmp/mpi-bench-data
$F up --data-dir /tmp/mpi-bench-data --invoke-port 18080 --upload-port 18002 --grpc-port 18081 > /tmp/mpi-up.log 2>&1 &
UP=$!
trap "kill $UP" EXIT
for i in $(seq 50); do curl -s localhost:18080/f/demo/echo -d x >/dev/null 2>&1 && break; sleep 0.2; done
$F upload bench/mpi /tmp/mpi_bench.wasm --addr http://127.0.0.1:18081 >/dev/null
run() { echo "$1 | $2 | $($F invoke bench/mpi --mpi $1 --input "$2" --addr http://127.0.0.1:18081)"; }
for round in 1 2; do
  run 1 "self 5000 8"
  run 2 "pingpong 5000 8"
  run 1 "self 200 1048576"
  run 2 "pingpong 200 1048576"
  run 2 "allreduce 5000"
  run 4 "allreduce 5000"
  run 8 "allreduce 2000"
done
