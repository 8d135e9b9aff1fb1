#!/bin/bash
# Outbound HTTP's cost: a function (the testkit's `fetch`) that GETs fwasm's own /ping,
# against the same GET sent directly (the request's floor) and demo/echo (a call's floor),
# all in one run through `fwasm up`. Release build first:
#   cargo build --release -p fwasm --bin fwasm && cargo test -p fwasm-integration --no-run && bench/outbound.sh
set -e
cd "$(dirname "$0")/.."
F=target/release/fwasm
T=integration/functions/target/wasm32-unknown-unknown/release/testkit.wasm
rm -rf /tmp/outbound-bench-data
$F up --data-dir /tmp/outbound-bench-data --invoke-port 18080 --upload-port 18002 --grpc-port 18081 \
  --allow-outbound 127.0.0.1:18080 > /tmp/outbound-up.log 2>&1 &
UP=$!
trap "kill $UP" EXIT
for i in $(seq 50); do curl -s localhost:18080/f/demo/echo -d x >/dev/null 2>&1 && break; sleep 0.2; done
$F upload bench/fetch $T --allow-host 127.0.0.1:18080 --addr http://127.0.0.1:18081 >/dev/null
cat > /tmp/post-fetch.lua <<'LUA'
wrk.method = "POST"
wrk.body = "GET http://127.0.0.1:18080/ping"
LUA
curl -s -X POST localhost:18080/f/bench/fetch -d "GET http://127.0.0.1:18080/ping"; echo
for round in 1 2; do
  for c in 1 32; do
    t=$([ $c = 1 ] && echo 1 || echo 2)
    echo "== round $round, $c connections, direct GET /ping"
    wrk -t$t -c$c -d8s --latency http://127.0.0.1:18080/ping | grep -E "^ +(50|99)%|Requests/sec|Non-2xx"
    echo "== round $round, $c connections, demo/echo"
    wrk -t$t -c$c -d8s --latency -s bench/post-hi.lua http://127.0.0.1:18080/f/demo/echo | grep -E "^ +(50|99)%|Requests/sec|Non-2xx"
    echo "== round $round, $c connections, bench/fetch (echo's call plus the GET)"
    wrk -t$t -c$c -d8s --latency -s /tmp/post-fetch.lua http://127.0.0.1:18080/f/bench/fetch | grep -E "^ +(50|99)%|Requests/sec|Non-2xx"
  done
done
