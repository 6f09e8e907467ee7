#!/usr/bin/env python3
"""What an open dashboard costs: CPU of the orchestrator and all its nodes over a window with
no page open, then over a window with /dashboard open in headless Chromium (the browser's
own CPU is not counted), alternating. Needs Debian's chromium.

    swift build -c release --product orchestrator
    python3 scripts/dashboard-cost.py .build/release/orchestrator --clusters 20 --nodes 5 --seconds 30 --rounds 2
"""
import argparse, json, os, shutil, subprocess, tempfile, time, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("binary")
parser.add_argument("--port", type=int, default=19000)
parser.add_argument("--clusters", type=int, default=20)
parser.add_argument("--nodes", type=int, default=5)
parser.add_argument("--heartbeat-ms", type=int, default=100)
parser.add_argument("--seconds", type=float, default=30)
parser.add_argument("--rounds", type=int, default=2)
args = parser.parse_args()

def get(path, method="GET", body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{args.port}{path}", method=method, data=body.encode() if body else None)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read() or b"{}")

def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except FileNotFoundError:
            pass
    return total

data = tempfile.mkdtemp(prefix="dashboard-cost-")
orchestrator = subprocess.Popen([args.binary, "--port", str(args.port), "--nodes", str(args.nodes), "--data-dir", data,
                                 "--heartbeat-ms", str(args.heartbeat_ms)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
browser_binary = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    for _ in range(150):
        try:
            get("/clusters/0")
            break
        except Exception:
            time.sleep(0.2)
    for _ in range(args.clusters - 1):
        get("/clusters", "POST", json.dumps({"nodes": args.nodes, "heartbeatMs": args.heartbeat_ms}))
    time.sleep(5)
    pids = [orchestrator.pid] + [n["pid"] for c in get("/clusters")["results"] for n in c["nodes"] if n.get("pid")]
    hertz = os.sysconf("SC_CLK_TCK")
    print(f"{len(pids)} processes; {args.seconds:.0f} s windows", flush=True)
    for round in range(args.rounds):
        for mode in ["closed", "open"]:
            browser = None
            if mode == "open":
                browser = subprocess.Popen([browser_binary, "--headless", "--no-sandbox", "--disable-gpu", f"http://127.0.0.1:{args.port}/dashboard"],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(5)
            before, started = cpu_ticks(pids), time.time()
            time.sleep(args.seconds)
            after, ended = cpu_ticks(pids), time.time()
            print(f"dashboard {mode}: {100 * (after - before) / hertz / (ended - started):.1f}% of one core", flush=True)
            if browser:
                browser.terminate()
                browser.wait()
finally:
    orchestrator.terminate()
    orchestrator.wait()
    shutil.rmtree(data, ignore_errors=True)
