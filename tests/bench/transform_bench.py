#!/usr/bin/env python3
"""Transform benchmark, driven against a running `weir up` (perf build). Not part of the suite.

1. Throughput: ROWS events are pushed into a root dataset; for each query (a filter/projection
   and an hourly GROUP BY) a derivative is created and its first step (the full computation)
   timed by the transform function itself (`lastDurationMs`: plan, read, compute, write and
   hash the slice, store, commit), median of RUNS (reset to metadata between runs). Then 1 %
   more rows are pushed and the incremental step is timed the same way, once for late rows
   (event times among the first hours: the hard case for a time-bucket aggregation) and once
   for rows in event-time order (after all others). In the same run, raw
   DataFusion (Python wheel, same major version as Weir's) and DuckDB compute the same SQL over
   the same Parquet file and write the result to Parquet, timed inside their process on the
   work alone, with their default threads and with one thread (Weir's engine runs one
   partition, so that every replay gives the same records in the same order).
2. Latency: PUSHES single-record pushes into a root read by an hourly GROUP BY derivative; for
   each, the time from sending the push until the derivative is up to date (polled every 5 ms),
   with the push's own latency, measured in the same loop, as the peer.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

QUERIES = {
    "filter/projection": "SELECT event_time, user_id, amount * 1.1 AS amount_eur, country FROM events WHERE score > 0.5",
    "GROUP BY hour": "SELECT date_trunc('hour', event_time) AS event_time, country, count(*) AS n, sum(amount) AS total FROM events GROUP BY 1, 2",
}

ROOT = """kind: DatasetSnapshot
version: 1
content:
  name: {name}
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: Csv
        header: true
        schema:
          fields:
            - {{name: event_time, type: Timestamp}}
            - {{name: id, type: Int64}}
            - {{name: user_id, type: Int64}}
            - {{name: amount, type: Float64}}
            - {{name: score, type: Float64}}
            - {{name: country, type: String}}
            - {{name: device, type: String}}
            - {{name: session, type: String}}
            - {{name: created_at, type: Timestamp}}
            - {{name: flag, type: Int64}}
      merge:
        kind: Append
"""

DERIVATIVE = """kind: DatasetSnapshot
version: 1
content:
  name: {name}
  kind: Derivative
  metadata:
    - kind: SetTransform
      inputs:
        - datasetRef: admin/{root}
          alias: events
      transform:
        kind: Sql
        engine: datafusion
        query: {query}
"""


class Node:
    def __init__(self, url, token):
        self.url, self.token = url, token

    def call(self, method, path, body=None, content_type="application/json"):
        request = urllib.request.Request(self.url + path, data=body, method=method)
        request.add_header("Authorization", "Bearer " + self.token)
        if body is not None:
            request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, timeout=3600) as response:
            return json.loads(response.read() or b"null")

    def create(self, manifest):
        return self.call("POST", "/datasets", manifest.encode(), "application/yaml")

    def push(self, dataset, path_or_bytes, content_type):
        if isinstance(path_or_bytes, bytes):
            body = path_or_bytes
        else:
            with open(path_or_bytes, "rb") as file:
                body = file.read()
        return self.call("POST", f"/admin/{dataset}/ingest", body, content_type)

    def status(self, dataset):
        return self.call("GET", f"/datasets/admin/{dataset}/transform")

    def wait_up_to_date(self, dataset, poll=0.05):
        while True:
            status = self.status(dataset)
            if status["upToDate"]:
                if status.get("lastError"):
                    sys.exit(f"{dataset}: {status['lastError']}")
                return status
            time.sleep(poll)


def peer(tool, threads, query, parquet, out):
    """Seconds a peer takes to compute `query` over `parquet` and write the result."""
    if tool == "datafusion":
        import datafusion

        config = datafusion.SessionConfig()
        if threads:
            config = config.with_target_partitions(threads)
        ctx = datafusion.SessionContext(config)
        start = time.perf_counter()
        ctx.register_parquet("events", parquet, file_extension="")
        ctx.sql(query).write_parquet(out)
        return time.perf_counter() - start
    import duckdb

    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {threads}")
    start = time.perf_counter()
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{parquet}/*')")
    con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet)")
    return time.perf_counter() - start


def run_peer(tool, threads, query, parquet, out):
    # A fresh interpreter per run, timed inside on the work alone.
    code = (
        "import sys, json; sys.path.insert(0, %r); import transform_bench as b; "
        "print(b.peer(%r, %r, %r, %r, %r))" % (os.path.dirname(__file__), tool, threads, query, parquet, out)
    )
    return float(subprocess.check_output([sys.executable, "-c", code]).decode().strip())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--full", required=True, help="CSV with the rows of the first push")
    parser.add_argument("--increment", required=True, help="CSV with 1 % more rows, late (event times among the first hours)")
    parser.add_argument("--in-order", required=True, help="CSVs (one per query, comma-separated) with 1 % more rows, event times after all others")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    node = Node(args.url, args.token)

    root = node.create(ROOT.format(name="events"))
    pushed = node.push("events", args.full, "text/csv")
    rows = pushed["numRecords"]
    # The root's data files, which the peers read as they are when each query is measured.
    parquet = os.path.join(args.data_dir, "datasets", root["id"], "data")

    print(f"| query | tool | full s ({rows:,} rows first) | ratio to raw DataFusion | incremental s (+1 %, late) | incremental / full | incremental s (+1 %, in order) | incremental / full |")
    print("|---|---|---|---|---|---|---|---|")
    for index, (label, query) in enumerate(QUERIES.items()):
        name = f"derived{index}"
        node.create(DERIVATIVE.format(name=name, root="events", query=json.dumps(query)))
        fulls = []
        for run in range(args.runs):
            if run:
                node.call("POST", f"/datasets/admin/{name}/reset", b"{}")
                time.sleep(0.2)
            fulls.append(node.wait_up_to_date(name)["lastDurationMs"] / 1000)
        out = os.path.join(args.work, "peer.parquet")
        peers = {}
        for tool, threads in [("datafusion", None), ("datafusion", 1), ("duckdb", None), ("duckdb", 1)]:
            times = [run_peer(tool, threads, query, parquet, out) for _ in range(args.runs)]
            peers[(tool, threads)] = statistics.median(times)
        # 1 % more input: the incremental step.
        node.push("events", args.increment, "text/csv")
        incremental = node.wait_up_to_date(name)["lastDurationMs"] / 1000
        node.push("events", args.in_order.split(",")[index], "text/csv")
        in_order = node.wait_up_to_date(name)["lastDurationMs"] / 1000
        full = statistics.median(fulls)
        raw = peers[("datafusion", None)]
        print(f"| {label} | Weir | {full:.2f} | {full / raw:.2f}x | {incremental:.2f} | {incremental / full:.1%} | {in_order:.2f} | {in_order / full:.1%} |")
        for (tool, threads), seconds in peers.items():
            who = {"datafusion": "raw DataFusion 55 (Python)", "duckdb": "DuckDB"}[tool]
            who += ", 1 thread" if threads else ", 2 threads"
            print(f"| {label} | {who} | {seconds:.2f} | {seconds / raw:.2f}x | (full again) | | | |")
        node.call("DELETE", f"/datasets/admin/{name}")
        sys.stdout.flush()

    # Latency of a derivative following single-record pushes.
    node.create(ROOT.format(name="sensor"))
    node.create(DERIVATIVE.format(name="sensor.hourly", root="sensor", query=json.dumps(QUERIES["GROUP BY hour"])))
    header = b"event_time,id,user_id,amount,score,country,device,session,created_at,flag\n"
    derived, pushes = [], []
    for i in range(args.pushes):
        line = f"2026-01-01T{i % 24:02}:{i % 60:02}:00Z,{i},{i},{i}.5,0.5,DE,mobile,s,2026-01-01T00:00:00Z,1\n"
        start = time.perf_counter()
        node.push("sensor", header + line.encode(), "text/csv")
        pushes.append(time.perf_counter() - start)
        node.wait_up_to_date("sensor.hourly", poll=0.005)
        derived.append(time.perf_counter() - start)

    def pct(values, q):
        values = sorted(values)
        return values[min(len(values) - 1, int(q * len(values)))] * 1000

    print()
    print(f"| {args.pushes} single-record pushes | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    print(f"| push answered (peer) | {pct(pushes, 0.5):.0f} | {pct(pushes, 0.99):.0f} | {max(pushes) * 1000:.0f} |")
    print(f"| push → derivative up to date | {pct(derived, 0.5):.0f} | {pct(derived, 0.99):.0f} | {max(derived) * 1000:.0f} |")


if __name__ == "__main__":
    main()
