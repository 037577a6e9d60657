"""`python -m durable_agents.testing`: run the test model server in the foreground."""

from __future__ import annotations

import argparse

from .server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m durable_agents.testing",
        description="Serve an OpenAI-compatible test chat model; prints its base URL (for base_url=) first.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8089, help="port to listen on; 0 picks a free one (default 8089)")
    parser.add_argument("--latency-ms", type=int, default=0, help="wait this long before every response (default 0)")
    args = parser.parse_args(argv)
    serve(args.host, args.port, latency_ms=args.latency_ms)


if __name__ == "__main__":
    main()
