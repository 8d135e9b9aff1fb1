# Start-up from the snapshot: fwasm_init() runs once per executor; every call sees the
# globals it set, never another call's changes; json was imported before the snapshot; and
# random numbers differ between calls though every call starts from the same snapshot.
import os
import random
import sys
import time

json_preloaded = "json" in sys.modules
STARTED = None
CALLS = 0


def fwasm_init():
    global STARTED
    STARTED = time.time_ns()


def handle(request):
    global CALLS
    CALLS += 1
    return " ".join([str(STARTED), str(CALLS), str(json_preloaded),
                     str(random.random()), os.urandom(8).hex()])
