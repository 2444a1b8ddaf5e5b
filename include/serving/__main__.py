"""Start the online prediction service: `python -m include.serving --host 127.0.0.1 --port 8000`.

The one way the service is started (scripts/run.sh, scripts/run_server.sh, the benchmarks and the
end-to-end tests), so what is measured is what runs:

- one process, one event loop (uvloop, httptools): a prediction is ~1 ms of CPU, so threads
  would add hand-offs, not throughput, on a 2-core machine; more cores, more processes behind a
  load balancer (deploy/helm);
- one OpenMP thread (set before scikit-learn is imported, so it binds every thread);
- no access log (the prediction log records every request).
"""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m include.serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"
    import uvicorn

    uvicorn.run(
        "include.serving.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
