#!/bin/bash
# Outbound https's cost: a function (the testkit's `fetch`) that GETs /ping from a second
# `fwasm up` serving its ports over TLS (a test CA the first one trusts with --outbound-ca),
# against the same GET sent directly over https (wrk, connections kept alive) and demo/echo,
# all in one run. Release build first:
#   cargo build --release -p fwasm --bin fwasm && cargo test -p fwasm-integration --no-run && bench/outbound-https.sh
set -e
cd "$(dirname "$0")/.."
F=target/release/fwasm
T=integration/functions/target/wasm32-unknown-unknown/release/testkit.wasm
D=/tmp/outbound-https-bench
rm -rf $D && mkdir -p $D
# A CA, and a certificate it signs for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
  -keyout $D/ca.key -out $D/ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout $D/server.key -out $D/server.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > $D/ext
openssl x509 -req -in $D/server.csr -CA $D/ca.pem -CAkey $D/ca.key -CAcreateserial -days 2 \
  -extfile $D/ext -out $D/server.pem 2>/dev/null
$F up --data-dir $D/server --invoke-port 28080 --upload-port 28002 --grpc-port 28081 \
  --tls-cert $D/server.pem --tls-key $D/server.key > $D/server.log 2>&1 &
SERVER=$!
$F up --data-dir $D/caller --invoke-port 18080 --upload-port 18002 --grpc-port 18081 \
  --allow-outbound 127.0.0.1:28080 --outbound-ca $D/ca.pem > $D/caller.log 2>&1 &
CALLER=$!
trap "kill $SERVER $CALLER" EXIT
for i in $(seq 50); do curl -s localhost:18080/f/demo/echo -d x >/dev/null 2>&1 && break; sleep 0.2; done
for i in $(seq 50); do curl -s --cacert $D/ca.pem https://127.0.0.1:28080/ping >/dev/null 2>&1 && break; sleep 0.2; done
$F upload bench/fetch $T --allow-host 127.0.0.1:28080 --addr http://127.0.0.1:18081 >/dev/null
cat > $D/post-fetch.lua <<'LUA'
wrk.method = "POST"
wrk.body = "GET https://127.0.0.1:28080/ping"
LUA
curl -s -X POST localhost:18080/f/bench/fetch -d "GET https://127.0.0.1:28080/ping"; echo
for round in 1 2; do
  for c in 1 32; do
    t=$([ $c = 1 ] && echo 1 || echo 2)
    echo "== round $round, $c connections, direct GET https /ping"
    wrk -t$t -c$c -d8s --latency https://127.0.0.1:28080/ping | grep -E "^ +(50|99)%|Requests/sec|Non-2xx"
    echo "== round $round, $c connections, demo/echo"
    wrk -t$t -c$c -d8s --latency -s bench/post-hi.lua http://127.0.0.1:18080/f/demo/echo | grep -E "^ +(50|99)%|Requests/sec|Non-2xx"
    echo "== round $round, $c connections, bench/fetch (echo's call plus the https GET)"
    wrk -t$t -c$c -d8s --latency -s $D/post-fetch.lua http://127.0.0.1:18080/f/bench/fetch | grep -E "^ +(50|99)%|Requests/sec|Non-2xx"
  done
done
