"""Concurrent pushes into one dataset: WRITERS threads each send PUSHES small NDJSON pushes
(RECORDS records, unique values) to one or more ingest URLs, one after the other per writer.
Prints one JSON object: pushes that succeeded and failed (by status), latency percentiles and
wall time. Used by tests/bench/concurrency.sh; not part of the test suite.

    python3 concurrent_pushes.py --url URL [--url URL2] --writers 8 --pushes 50 [--token T]
"""

import argparse
import json
import threading
import time
import urllib.error
import urllib.request


def push(url, token, body):
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("content-type", "application/x-ndjson")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        error.read()
        return error.code
    except OSError:
        return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", action="append", required=True)
    parser.add_argument("--token")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--records", type=int, default=10)
    parser.add_argument("--tag", default="run")
    args = parser.parse_args()

    results = []
    lock = threading.Lock()
    start_gate = threading.Barrier(args.writers)

    def writer(index):
        url = args.url[index % len(args.url)]
        start_gate.wait()
        for n in range(args.pushes):
            lines = [
                json.dumps({
                    "event_time": "2026-01-01T00:00:00Z",
                    "writer": f"{args.tag}-{index}",
                    "seq": n * args.records + r,
                })
                for r in range(args.records)
            ]
            body = ("\n".join(lines) + "\n").encode()
            started = time.perf_counter()
            status = push(url, args.token, body)
            elapsed = time.perf_counter() - started
            with lock:
                results.append((status, elapsed))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(args.writers)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began

    latencies = sorted(elapsed for _, elapsed in results)

    def percentile(p):
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]

    statuses = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    print(json.dumps({
        "pushes": len(results),
        "ok": statuses.get("200", 0),
        "failed": len(results) - statuses.get("200", 0),
        "statuses": statuses,
        "p50_ms": round(percentile(50) * 1000, 1),
        "p99_ms": round(percentile(99) * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
        "wall_s": round(wall, 2),
        "pushes_per_s": round(len(results) / wall, 1),
    }))


if __name__ == "__main__":
    main()
