#!/usr/bin/env python3
"""Query benchmark (not a test): a seeded synthetic events dataset is ingested into a running
`weir up`, then 12 ClickBench-shaped queries run hot through Weir's `POST /query`, through raw
DataFusion (the `datafusion` wheel, same major version as Weir's) and through DuckDB on the same
Parquet files Weir wrote, with the same thread count. Then the p50/p99 latency of a small query
under load (wrk) against Weir and against ROAPI serving the same Parquet file. Prints markdown.

Driven by tests/bench/query.sh, which builds Weir and starts it.
"""
import argparse
import glob
import json
import math
import os
import statistics
import subprocess
import tempfile
import time
import urllib.request

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

COUNTRIES = np.array(["DE", "FR", "US", "BR", "IN", "JP", "CA", "AU", "ZA", "MX"])
DEVICES = np.array(["mobile", "desktop", "tablet", "tv", "watch"])

MANIFEST = """kind: DatasetSnapshot
version: 1
content:
  name: {name}
  kind: Root
  metadata:
    - kind: AddPushSource
      sourceName: default
      read:
        kind: Parquet
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
            - {{name: flag, type: Int64}}
      merge:
        kind: Append
"""

QUERIES = [
    ("count", "SELECT count(*) FROM events"),
    ("filtered count", "SELECT count(*) FROM events WHERE flag <> 0"),
    ("sums", "SELECT sum(amount), count(*), avg(score) FROM events"),
    ("distinct users", "SELECT count(DISTINCT user_id) FROM events"),
    ("filter + aggregate", "SELECT avg(amount) FROM events WHERE country = 'DE' AND score > 0.5"),
    ("group by low card", "SELECT country, count(*) AS c FROM events GROUP BY country ORDER BY c DESC, country"),
    ("group by 2 keys", "SELECT device, country, avg(amount) AS a FROM events GROUP BY device, country ORDER BY a DESC, device, country LIMIT 10"),
    ("group by high card", "SELECT user_id, count(*) AS c FROM events GROUP BY user_id ORDER BY c DESC, user_id LIMIT 10"),
    ("group by string high card", "SELECT session, sum(amount) AS s FROM events GROUP BY session ORDER BY s DESC, session LIMIT 10"),
    ("top-N", "SELECT id, user_id, amount FROM events ORDER BY amount DESC, id LIMIT 10"),
    ("string LIKE", "SELECT count(*) FROM events WHERE session LIKE '%ab%'"),
    ("time buckets", "SELECT date_trunc('hour', event_time) AS h, count(*) AS c FROM events GROUP BY h ORDER BY h LIMIT 24"),
]

SMALL_QUERY = "SELECT device, count(*) AS c, avg(amount) AS a FROM small WHERE amount > 50 GROUP BY device ORDER BY device"


def chunk(rows, first_id, seed):
    rng = np.random.Generator(np.random.PCG64(seed))
    ids = np.arange(first_id, first_id + rows, dtype=np.int64)
    start_ms = 1_704_067_200_000  # 2024-01-01
    event_ms = start_ms + ids * 37 + rng.integers(0, 1000, rows)
    sessions = rng.integers(0, 2_000_000, rows)
    return pa.table({
        "event_time": pa.array(event_ms, pa.timestamp("ms", tz="UTC")),
        "id": ids,
        "user_id": rng.integers(0, 1_000_000, rows),
        "amount": np.round(rng.uniform(0, 10_000, rows), 2),
        "score": rng.random(rows),
        "country": COUNTRIES[rng.integers(0, len(COUNTRIES), rows)],
        "device": DEVICES[rng.integers(0, len(DEVICES), rows)],
        "session": np.char.add("s-", np.char.mod("%08x", sessions)),
        "flag": rng.integers(0, 2, rows),
    })


def http(method, url, token, body=None, content_type=None):
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def ingest(weir, token, name, rows, chunk_rows, workdir):
    http("POST", f"{weir}/datasets", token, MANIFEST.format(name=name).encode(), "application/yaml")
    pushed = 0
    started = time.perf_counter()
    for index in range(math.ceil(rows / chunk_rows)):
        count = min(chunk_rows, rows - pushed)
        path = os.path.join(workdir, f"{name}-{index}.parquet")
        pq.write_table(chunk(count, pushed, seed=42 + index), path)
        with open(path, "rb") as file:
            answer = http("POST", f"{weir}/admin/{name}/ingest", token, file.read(), "application/vnd.apache.parquet")
        assert answer["numRecords"] == count, answer
        os.remove(path)
        pushed += count
    return time.perf_counter() - started


def weir_files(data_dir, name, link_dir):
    """Weir's data slices of dataset `name`, linked as *.parquet for engines that want extensions."""
    dataset_dirs = [d for d in glob.glob(os.path.join(data_dir, "datasets", "did:odf:*"))
                    if open(os.path.join(d, "info", "alias")).read().strip().endswith(f"/{name}")]
    assert len(dataset_dirs) == 1, dataset_dirs
    os.makedirs(link_dir, exist_ok=True)
    links = []
    for index, path in enumerate(sorted(glob.glob(os.path.join(dataset_dirs[0], "data", "*")))):
        link = os.path.join(link_dir, f"part-{index:03}.parquet")
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(path, link)
        links.append(link)
    return links


def hot_seconds(run, repetitions):
    run()  # warm-up: caches, file metadata
    times = []
    for _ in range(repetitions):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class WeirClient:
    """POST /query over one kept-alive connection, as an application would."""

    def __init__(self, weir, token):
        import http.client
        import urllib.parse
        address = urllib.parse.urlparse(weir)
        self.connection = http.client.HTTPConnection(address.hostname, address.port, timeout=600)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def query(self, body):
        self.connection.request("POST", "/query", body=body, headers=self.headers)
        response = self.connection.getresponse()
        payload = response.read()
        assert response.status == 200, payload
        return json.loads(payload)


def bench_queries(weir, token, parquet_dir, threads, repetitions):
    import datafusion
    import duckdb

    config = datafusion.SessionConfig().with_target_partitions(threads)
    datafusion_context = datafusion.SessionContext(config)
    datafusion_context.register_parquet("events", parquet_dir)
    duck = duckdb.connect()
    duck.execute(f"SET threads = {threads}")
    duck.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{parquet_dir}/*.parquet')")

    client = WeirClient(weir, token)
    results = []
    for label, sql in QUERIES:
        body = json.dumps({"query": sql, "dataFormat": "JsonAoA"}).encode()
        weir_rows = client.query(body)["output"]["data"]
        duck_rows = duck.execute(sql).fetchall()
        assert len(weir_rows) == len(duck_rows), (label, weir_rows, duck_rows)
        results.append({
            "label": label,
            "sql": sql,
            "weir": hot_seconds(lambda: client.query(body), repetitions),
            "datafusion": hot_seconds(lambda: datafusion_context.sql(sql).collect(), repetitions),
            "duckdb": hot_seconds(lambda: duck.execute(sql).fetchall(), repetitions),
        })
    return results


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "{content_type}"
{auth}
"""


def wrk_latency(url, body, content_type, token, connections, seconds):
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(body=json.dumps(body), content_type=content_type, auth=auth))
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        check=True, capture_output=True, text=True).stdout
    os.remove(script.name)
    latency = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            latency[parts[0]] = to_millis(parts[1])
        if line.startswith("Requests/sec:"):
            latency["rps"] = float(line.split()[1])
        if "Non-2xx" in line:
            raise SystemExit(f"errors under load at {url}: {line}")
    return latency


def to_millis(text):
    for suffix, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    raise ValueError(text)


def free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_http(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing answers at {url}")


def bench_latency(weir, token, small_parquet, connections, seconds):
    roapi_port = free_port()
    # ROAPI also opens PostgreSQL and FlightSQL endpoints; keep them off the machine's ports.
    roapi = subprocess.Popen(
        ["roapi", "-a", f"127.0.0.1:{roapi_port}", "-p", f"127.0.0.1:{free_port()}",
         "--addr-flight-sql", f"127.0.0.1:{free_port()}", "-t", f"small={small_parquet}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        roapi_url = f"http://127.0.0.1:{roapi_port}"
        wait_http(f"{roapi_url}/api/schema")
        check = urllib.request.Request(f"{roapi_url}/api/sql", data=SMALL_QUERY.encode(), method="POST")
        roapi_rows = json.loads(urllib.request.urlopen(check).read())
        body = json.dumps({"query": SMALL_QUERY, "dataFormat": "JsonAoS"})
        weir_rows = http("POST", f"{weir}/query", token, body.encode(), "application/json")["output"]["data"]
        assert len(roapi_rows) == len(weir_rows) == len(DEVICES), (roapi_rows, weir_rows)
        return {
            "weir": wrk_latency(f"{weir}/query", body, "application/json", token, connections, seconds),
            "roapi": wrk_latency(f"{roapi_url}/api/sql", SMALL_QUERY, "text/plain", None, connections, seconds),
        }
    finally:
        roapi.terminate()
        roapi.wait()


def version(command):
    try:
        return subprocess.run(command, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--weir", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--data-dir", required=True, help="weir up --data-dir")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()

    import datafusion
    import duckdb

    ingest_seconds = ingest(args.weir, args.token, "events", args.rows, args.chunk_rows, args.work_dir)
    ingest(args.weir, args.token, "small", 10_000, 10_000, args.work_dir)
    events_dir = os.path.join(args.work_dir, "events-parquet")
    files = weir_files(args.data_dir, "events", events_dir)
    small = weir_files(args.data_dir, "small", os.path.join(args.work_dir, "small-parquet"))
    size = sum(os.path.getsize(f) for f in files)

    results = bench_queries(args.weir, args.token, events_dir, args.threads, args.repetitions)
    latency = bench_latency(args.weir, args.token, small[0], args.connections, args.seconds)

    print(f"{args.rows:,} rows ingested in {ingest_seconds:.1f} s as {len(files)} Parquet slices "
          f"({size / 2**20:.0f} MiB); {args.threads} threads everywhere; median of "
          f"{args.repetitions} hot runs after one warm-up.")
    print(f"DataFusion (Python) {datafusion.__version__}, DuckDB {duckdb.__version__}, "
          f"{version(['roapi', '--version'])}, {version(['wrk', '-v'])}.\n")
    print("| # | query | Weir POST /query (ms) | raw DataFusion (ms) | DuckDB (ms) | Weir / DataFusion | Weir / DuckDB |")
    print("|---|---|---|---|---|---|---|")
    for index, row in enumerate(results, 1):
        print(f"| {index} | {row['label']} | {row['weir'] * 1000:.0f} | {row['datafusion'] * 1000:.0f} | "
              f"{row['duckdb'] * 1000:.0f} | {row['weir'] / row['datafusion']:.2f} | {row['weir'] / row['duckdb']:.2f} |")
    geomean = lambda key: math.exp(statistics.mean(math.log(r["weir"] / r[key]) for r in results))
    print(f"| | **geomean** | | | | **{geomean('datafusion'):.2f}** | **{geomean('duckdb'):.2f}** |\n")
    print(f"Small query under load (wrk, 1 thread, {args.connections} connections, {args.seconds} s; "
          f"10,000-row dataset): `{SMALL_QUERY}`\n")
    print("| server | p50 (ms) | p99 (ms) | requests/s |")
    print("|---|---|---|---|")
    for server, figures in latency.items():
        print(f"| {server} | {figures['50%']:.2f} | {figures['99%']:.2f} | {figures['rps']:.0f} |")
    print()
    for index, row in enumerate(results, 1):
        print(f"- Q{index}: `{row['sql']}`")


if __name__ == "__main__":
    main()
