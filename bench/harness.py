"""Benchmark plumbing: worker processes for the durable app and the Celery baseline, and clients."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


class Worker:
    """A worker process in its own process group, started and awaited until it is ready."""

    def __init__(self, command: list[str], env: dict[str, str], name: str) -> None:
        self.log = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / f"bench-{name}-{uuid.uuid4().hex[:6]}.log"
        self.process = subprocess.Popen(
            command, cwd=BENCH_DIR, env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while b" ready." not in self.log.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {name} did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def durable_worker(
    env: dict[str, str], pool: str, concurrency: int, name: str = "durable", module: str = "engine_app:app"
) -> Worker:
    command = [sys.executable, "-m", "durable_agents", "worker", module, "--pool", pool,
               "--concurrency", str(concurrency), "--loglevel", "INFO",
               "--hostname", f"{name}-{uuid.uuid4().hex[:6]}@%h"]  # fmt: skip
    return Worker(command, env, name)


def celery_worker(env: dict[str, str], pool: str, concurrency: int) -> Worker:
    command = [sys.executable, "-m", "celery", "-A", "celery_app:celery", "worker", "--pool", pool,
               "--concurrency", str(concurrency), "--loglevel", "INFO", "-Q", "bench.baseline",
               "--hostname", f"baseline-{uuid.uuid4().hex[:6]}@%h"]  # fmt: skip
    return Worker(command, env, "celery")
