"""Streaming benchmark: chunk latency and throughput through durable agents, next to a direct SDK stream.

    python -m bench.stream_latency [--runs 5] [--words 200] [--chunk-delay-ms 0]

Both paths stream the same reply from the same bundled test model in this run. Latency of a
chunk is the time from its arrival at the process talking to the model (the worker, or this
process for the direct stream) to its receipt by the reader; on one machine the clocks agree.
Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL); starts its own worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from openai import OpenAI

from durable_agents import DurableAgentClient, DurableClient
from durable_agents.store.schema import upgrade
from durable_agents.testing import TestModelServer

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def direct(server: TestModelServer, words: int) -> tuple[list[float], float]:
    """Chunks per second of a plain SDK stream (its latency is zero by definition: the reader is the receiver)."""
    sdk = OpenAI(base_url=server.url, api_key="bench")
    arrivals = []
    stream = sdk.chat.completions.create(model="bench", messages=[{"role": "user", "content": "go"}], stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.time())
    return [0.0] * len(arrivals), len(arrivals) / (arrivals[-1] - arrivals[0])


async def durable(agents: DurableAgentClient) -> tuple[list[float], float]:
    agent = agents.get_agent("Streamer")
    latencies = []
    arrivals = []
    stream = await agent.run("go", session=uuid.uuid4().hex, stream=True)
    async for chunk in stream:
        if chunk.kind == "chunk":
            now = time.time()
            arrivals.append(now)
            latencies.append(now - chunk.timestamp)
    return latencies, len(arrivals) / (arrivals[-1] - arrivals[0])


def summary(name: str, runs: list[tuple[list[float], float]]) -> tuple[float, float, float]:
    p50 = [percentile(lat, 0.5) * 1000 for lat, _ in runs]
    p99 = [percentile(lat, 0.99) * 1000 for lat, _ in runs]
    rate = [r for _, r in runs]
    print(
        f"{name:<10} p50 {statistics.median(p50):7.2f} ms ({min(p50):.2f}-{max(p50):.2f})  "
        f"p99 {statistics.median(p99):7.2f} ms ({min(p99):.2f}-{max(p99):.2f})  "
        f"{statistics.median(rate):9.0f} chunks/s ({min(rate):.0f}-{max(rate):.0f})"
    )
    return statistics.median(p50), statistics.median(p99), statistics.median(rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument(
        "--chunk-delay-ms", type=int, default=0, help="the model's pause between chunks (10: 100 tokens/s)"
    )
    options = parser.parse_args()
    taskhub = f"bench{uuid.uuid4().hex[:8]}"
    os.environ["TASKHUB"] = taskhub
    with TestModelServer() as server:
        words = " ".join(f"w{i}" for i in range(options.words))
        server.control.add_rule(reply={"content": words, "chunk_delay_ms": options.chunk_delay_ms})
        os.environ["MODEL_SERVER_URL"] = server.url
        sys.path.insert(0, str(ROOT / "bench"))
        from stream_app import app

        upgrade(app.settings.database_url)
        worker = subprocess.Popen(
            [sys.executable, "-m", "durable_agents", "worker", "stream_app:app", "--pool", "threads", "-c", "4",
             "--loglevel", "WARNING"],
            cwd=ROOT / "bench",
        )  # fmt: skip
        try:
            agents = DurableAgentClient(DurableClient(app))
            asyncio.run(durable(agents))  # warm-up: worker start, connections, first turn
            direct_runs = [direct(server, options.words) for _ in range(options.runs)]
            durable_runs = [asyncio.run(durable(agents)) for _ in range(options.runs)]
        finally:
            worker.terminate()
            worker.wait()
    pace = f", {options.chunk_delay_ms} ms between chunks" if options.chunk_delay_ms else ", as fast as they come"
    print(f"{options.words}-word replies{pace}, median of {options.runs} runs (min-max)")
    _, _, direct_rate = summary("direct", direct_runs)
    _, _, durable_rate = summary("durable", durable_runs)
    print(f"throughput ratio durable/direct: {durable_rate / direct_rate:.2f}")


if __name__ == "__main__":
    main()
