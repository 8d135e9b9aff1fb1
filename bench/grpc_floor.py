"""The floor of a hop between executors: the round trip of one unary gRPC call to an
executor's own server (its standard health check, answered at once), sequential on one
channel, as the p50 of N calls in microseconds. Python's client adds its own overhead, so this
floor is high, not low. Usage: grpc_floor.py HOST:PORT [N]"""
import sys
import time

import grpc

addr, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2000
channel = grpc.insecure_channel(addr)
check = channel.unary_unary("/grpc.health.v1.Health/Check",
                            request_serializer=lambda b: b, response_deserializer=lambda b: b)
for _ in range(200):
    check(b"")
times = []
for _ in range(n):
    start = time.perf_counter()
    check(b"")
    times.append(time.perf_counter() - start)
times.sort()
print(f"grpc unary floor (health check of {addr}) | p50 {times[n // 2] * 1e6:.0f} us | "
      f"p99 {times[n * 99 // 100] * 1e6:.0f} us")
