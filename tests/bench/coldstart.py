"""Cold start of Lambda binaries: from exec to the first Runtime API `GET .../invocation/next`.

usage: coldstart.py RUNS NAME=PATH [NAME=PATH ...]

For each binary, RUNS times: a minimal Runtime API on loopback (this process), the binary
exec'd with AWS_LAMBDA_RUNTIME_API pointing at it and a scratch config (local storage, open
access: nothing outside the process is reached at init); the clock stops when its first
`/next` arrives, RSS (VmRSS) is read then, and the process is killed. Also reports the
binary's size and its zip's (bootstrap, deflate level 9, as `cargo lambda build` packs it).
Prints one JSON line per binary: p50/p90/min/max ms, RSS p50 MiB, sizes in MiB.
"""
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

arrived = threading.Event()


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path.endswith("/invocation/next"):
            arrived.set()
            time.sleep(5)  # hold the long poll; the process is killed meanwhile
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def zip_mib(path):
    with tempfile.TemporaryDirectory() as scratch:
        target = os.path.join(scratch, "bootstrap.zip")
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            archive.write(path, "bootstrap")
        return os.path.getsize(target) / 2**20


def measure(name, path, runs, server_port, scratch):
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server_port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "WEIR__STORAGE__KIND": "local_fs",
        "WEIR__STORAGE__ROOT_DIR": os.path.join(scratch, "datasets"),
        "WEIR__OPEN_ACCESS": "true",
        "WEIR_CONFIG_PATH": os.path.join(scratch, "none.yml"),
        "RUST_LOG": "error",
    })
    times, rss = [], []
    for _ in range(runs):
        arrived.clear()
        start = time.perf_counter()
        process = subprocess.Popen([path], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not arrived.wait(10):
            process.kill()
            sys.exit(f"{name} never asked for an invocation: {process.stderr.read().decode()[-500:]}")
        times.append((time.perf_counter() - start) * 1000)
        rss.append(rss_mib(process.pid))
        process.kill()
        process.wait()
    times.sort()
    return {
        "binary": name,
        "runs": runs,
        "p50Ms": round(statistics.median(times), 2),
        "p90Ms": round(times[int(0.9 * (len(times) - 1))], 2),
        "minMs": round(times[0], 2),
        "maxMs": round(times[-1], 2),
        "rssP50MiB": round(statistics.median(rss), 1),
        "binaryMiB": round(os.path.getsize(path) / 2**20, 1),
        "zipMiB": round(zip_mib(path), 1),
    }


def main():
    runs = int(sys.argv[1])
    server = Server(("127.0.0.1", 0), RuntimeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as scratch:
        with open(os.path.join(scratch, "none.yml"), "w") as config:
            config.write("{}\n")
        for pair in sys.argv[2:]:
            name, path = pair.split("=", 1)
            measure(name, path, 2, server.server_address[1], scratch)  # warm the page cache
            print(json.dumps(measure(name, path, runs, server.server_address[1], scratch)), flush=True)


if __name__ == "__main__":
    main()
