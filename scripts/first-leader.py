#!/usr/bin/env python3
"""Start to first leader: creates clusters through a running orchestrator's API, alternating
fastFirstElection on and off, and prints the seconds from the POST to the first moment a
node reports itself leader (the POST itself returns once every node answers).

    swift run -c release orchestrator --port 8000 &
    python3 scripts/first-leader.py --port 8000 --nodes 5 --rounds 10
"""
import argparse, json, statistics, time, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=8000)
parser.add_argument("--nodes", type=int, default=5)
parser.add_argument("--rounds", type=int, default=10)
args = parser.parse_args()

def call(method, path, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{args.port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read()
        return json.loads(text) if text else None

results = {True: [], False: []}
for round in range(args.rounds):
    for fast in (True, False):
        started = time.monotonic()
        cluster = call("POST", "/clusters", {"nodes": args.nodes, "fastFirstElection": fast})
        answered = time.monotonic() - started
        while True:
            summary = call("GET", f"/clusters/{cluster['id']}")
            if summary.get("leader"):
                break
            time.sleep(0.002)
        elapsed = time.monotonic() - started
        results[fast].append(elapsed)
        print(f"round {round + 1} fastFirstElection={str(fast).lower():5}: nodes answering {answered:.3f} s, leader {elapsed:.3f} s ({summary['leader']}, term {summary['term']})", flush=True)
        call("DELETE", f"/clusters/{cluster['id']}")
for fast in (True, False):
    values = sorted(results[fast])
    print(f"fastFirstElection={str(fast).lower()}: median {statistics.median(values):.3f} s, min {values[0]:.3f}, max {values[-1]:.3f} over {len(values)}")
