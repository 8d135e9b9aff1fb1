#!/bin/bash
# Python functions through `fwasm up`, against demo/echo in the same run (the floor): a
# hello at 1 and 32 connections (Faasm's faasm_main form and fwasm's handle form), and a
# function's first start: its upload (which loads its script on the executor and takes its
# snapshot; the executor's first also starts the interpreter) and its first call.
# Release build and the runtime first:
#   cargo build --release -p fwasm --bin fwasm && scripts/build-python && bench/python-up.sh
set -e
cd "$(dirname "$0")/.."
F=target/release/fwasm
rm -rf /tmp/python-bench-data
$F up --data-dir /tmp/python-bench-data --invoke-port 18080 --upload-port 18002 --grpc-port 18081 > /tmp/python-up.log 2>&1 &
UP=$!
trap "kill $UP" EXIT
for i in $(seq 50); do curl -s localhost:18080/f/demo/echo -d x >/dev/null 2>&1 && break; sleep 0.2; done
cat > /tmp/bench-hello.py <<'PY'
def handle(request):
    return b"Hello, " + request.body + b"!"
PY
first() {  # NAME SCRIPT: the upload's time, then the first call's
  local up call
  up=$(curl -s -o /dev/null -w '%{time_total}' -X PUT --data-binary @"$2" localhost:18002/p/bench/"$1")
  call=$(curl -s -o /dev/null -w '%{time_total}' -X POST localhost:18080/p/bench/"$1" -d hi)
  echo "first start of $1: upload (its script loaded, snapshot taken) ${up}s, first call ${call}s"
}
# The executor's first Python function starts the interpreter too (once per executor).
first faasm integration/functions-py/hello.py
grep -a "function snapshotted" /tmp/python-up.log | head -1 | sed 's/.*init_fuel/  of which the interpreter start-up: init_fuel/'
first handle /tmp/bench-hello.py
for round in 1 2; do
  for c in 1 32; do
    t=$([ $c = 1 ] && echo 1 || echo 2)
    for target in f/demo/echo p/bench/faasm p/bench/handle; do
      echo "== round $round, $c connections, $target"
      wrk -t$t -c$c -d8s --latency -s bench/post-hi.lua http://127.0.0.1:18080/$target |
        grep -E "^ +(50|99)%|Requests/sec|Non-2xx"
    done
  done
done
