"""Many agent turns in flight from one asyncio client:
`python -m bench.async_turns [--sessions 20 200] [--latency-ms 1000] [--workers 2] [--concurrency 128]`.

Starts its own test model (answering after `--latency-ms`, in a process of its own) and workers (thread
pool), then, for each count of parallel sessions, measures the wall time of one turn on each session
from one asyncio client (`await agent.run(...)` for all of them at once) against the same requests sent
to the model alone with the async `openai` SDK, and against the former way (`asyncio.to_thread(
agent.run_sync, ...)`, a thread per turn from the default executor). Prints the median of `--runs` runs,
and the CPU time the workers and the client spent per turn (read from /proc: Linux). Needs DATABASE_URL
and REDIS_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .harness import BENCH_DIR, durable_worker


async def _timed(make: Callable[[int], Awaitable[Any]], count: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(make(i) for i in range(count)))
    return time.perf_counter() - started


def model_alone(url: str, count: int) -> float:
    import openai

    async def run() -> float:
        sdk = openai.AsyncOpenAI(api_key="bench", base_url=url, max_retries=0)
        try:
            return await _timed(
                lambda i: sdk.chat.completions.create(
                    model="bench", messages=[{"role": "user", "content": f"Question {i}"}]
                ),
                count,
            )
        finally:
            await sdk.close()

    return asyncio.run(run())


def durable(app: Any, count: int, threaded: bool) -> float:
    from durable_agents import AsyncDurableClient, DurableAgentClient

    agent = DurableAgentClient(AsyncDurableClient(app)).get_agent("Benchy")
    tag = uuid.uuid4().hex[:8]

    async def turn(i: int) -> Any:
        if threaded:
            return await asyncio.to_thread(agent.run_sync, f"Question {i}", session=f"{tag}-{i}")
        return await agent.run(f"Question {i}", session=f"{tag}-{i}")

    return asyncio.run(_timed(turn, count))


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.async_turns", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[20, 200], help="parallel sessions per run")
    parser.add_argument("--latency-ms", type=int, default=1000, help="the test model's latency")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (thread pool)")
    parser.add_argument("--concurrency", type=int, default=128, help="slots of each worker")
    parser.add_argument("--runs", type=int, default=3, help="runs per count (the median is reported)")
    options = parser.parse_args()
    os.environ.update({"TASKHUB": f"asyncturns{uuid.uuid4().hex[:8]}"})
    sys.path.insert(0, str(BENCH_DIR))
    # The model in a process of its own: in this one it would share the interpreter lock with the client.
    # Its output goes to a file: a pipe nobody reads would fill with its access log and stop it.
    model_log = Path(tempfile.mkstemp(prefix="bench-model-", suffix=".log")[1])
    model = subprocess.Popen(
        [sys.executable, "-m", "durable_agents", "testserver", "--port", "0", "--latency-ms", str(options.latency_ms)],
        stdout=model_log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        while not model_log.read_text().endswith("\n"):  # its first line is its URL
            time.sleep(0.05)
        model_url = model_log.read_text().splitlines()[0].strip()
        os.environ["MODEL_SERVER_URL"] = model_url
        import engine_app

        from durable_agents.store.schema import upgrade

        upgrade(engine_app.app.settings.database_url)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR.parent / "src"), str(BENCH_DIR)])}
        workers = [
            durable_worker(env, "threads", options.concurrency, name=f"turns{n}") for n in range(options.workers)
        ]
        try:
            durable(engine_app.app, 4, threaded=False)  # warm-up: connections, the listener, the workers' caches
            print(f"model latency {options.latency_ms} ms; {options.workers} workers x {options.concurrency} slots")
            print(
                f"{'sessions':>8} {'model alone':>12} {'async client':>13} {'ratio':>6} {'thread per turn':>16} "
                f"{'CPU/turn: workers':>18} {'client':>7}",
                flush=True,
            )
            for count in options.sessions:
                alone = statistics.median(model_alone(model_url, count) for _ in range(options.runs))
                worker_cpu, client_cpu = sum(cpu_seconds(w.process.pid) for w in workers), time.process_time()
                ours = statistics.median(durable(engine_app.app, count, threaded=False) for _ in range(options.runs))
                turns = count * options.runs
                worker_ms = (sum(cpu_seconds(w.process.pid) for w in workers) - worker_cpu) / turns * 1000
                client_ms = (time.process_time() - client_cpu) / turns * 1000
                # A thread per turn takes minutes for hundreds of turns: measured for the smaller counts only.
                threaded = f"{durable(engine_app.app, count, threaded=True):.2f}s" if count <= 50 else "-"
                print(
                    f"{count:>8} {alone:>11.2f}s {ours:>12.2f}s {ours / alone:>5.2f}x {threaded:>16} "
                    f"{worker_ms:>15.1f} ms {client_ms:>4.1f} ms",
                    flush=True,
                )
        finally:
            for worker in workers:
                worker.stop()
    finally:
        model.terminate()
        model.wait()


if __name__ == "__main__":
    main()
