"""The S3 API server the test suite runs on loopback: moto, with its requests served one at a
time. moto checks `If-Match` / `If-None-Match` and then writes without a lock, so two
conditional PUTs racing on one key can both succeed; S3 itself makes them atomic, and Weir's
compare-and-swap of `refs/head` relies on that. Serializing requests restores it.

    python3 local/s3_server.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialized(environ, start_response):
        with one_at_a_time:
            # Responses are produced inside the lock so no write interleaves with another.
            return list(app(environ, start_response))

    run_simple(host, port, serialized, threaded=True)


if __name__ == "__main__":
    main()
