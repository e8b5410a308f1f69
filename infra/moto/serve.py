"""moto (DynamoDB + Secrets Manager) on a loopback port, for the local stack and tests.

Usage: python infra/moto/serve.py [--port 0]
Prints `READY http://127.0.0.1:<port>` once listening; stops on SIGTERM/SIGINT.

Requests are executed one at a time. moto's backends evaluate a condition and apply the
write as separate Python steps, so two concurrent conditional writes to one item could
both succeed; DynamoDB itself serialises writes per item. Serialising here keeps the
exactly-once tests about our code, not about emulator races. Connections are still
accepted concurrently (threaded server, keep-alive works).
"""

import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class Serialised:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # Materialise the body inside the lock: WSGI apps may compute lazily.
            return list(self.app(environ, start_response))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    app = Serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
    port = server.server_address[1]

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"READY http://127.0.0.1:{port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
