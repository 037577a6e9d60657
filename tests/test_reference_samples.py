"""The reference's worker, client, single-agent, multi-agent, streaming-handler and consumer samples run as
separate programs (tests/reference_samples/), in embedded mode and on PostgreSQL and Redis; Ctrl-C stops
a worker cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from durable_agents.testing import TestModelServer

from conftest import ARTIFACTS, Services, new_taskhub, python_path, unconfigured_environment

SAMPLES = Path(__file__).resolve().parent / "reference_samples"

pytestmark = pytest.mark.usefixtures("fresh_model")


class Sample:
    """A sample worker script running in its own process, its output in a log file."""

    def __init__(self, script: str, env: dict[str, str], cwd: Path) -> None:
        self.script = script
        self.env = env
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"sample-{script}-{os.getpid()}-{time.monotonic_ns()}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(SAMPLES / script)], env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.script} exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.script} never printed {text!r}:\n{self.output()}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def samples(*scripts: str, env: dict[str, str], cwd: Path) -> Iterator[list[Sample]]:
    started = [Sample(script, env, cwd) for script in scripts]
    try:
        yield started
    finally:
        for sample in started:
            sample.kill()


def run_clients(*scripts: tuple[str, dict[str, str]], cwd: Path) -> list[str]:
    """Run client scripts side by side; returns what each printed."""
    running = [
        (script, subprocess.Popen([sys.executable, str(SAMPLES / script)], env=env, cwd=cwd, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True))
        for script, env in scripts
    ]  # fmt: skip
    outputs = []
    for script, process in running:
        stdout, stderr = process.communicate(timeout=90)
        assert process.returncode == 0, f"{script} failed:\n{stdout}\n{stderr}"
        outputs.append(stdout)
    return outputs


def load_sample(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"reference_{name}", SAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stop_cleanly(*workers: Sample) -> None:
    """Ctrl-C each worker (all at once); each exits 0 with no traceback."""
    for worker in workers:
        worker.process.send_signal(signal.SIGINT)
    for worker in workers:
        try:
            status = worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{worker.script} did not stop on Ctrl-C:\n{worker.output()}") from None
        assert status == 0, worker.output()
        assert "Traceback" not in worker.output(), worker.output()


def test_the_quick_start_worker_and_client_in_embedded_mode(tmp_path: Path, model_server: TestModelServer) -> None:
    env = {
        **unconfigured_environment(),
        "MODEL_SERVER_URL": model_server.url,
        "PYTHONPATH": python_path(str(SAMPLES)),
    }
    with samples("worker.py", env=env, cwd=tmp_path) as (worker,):
        worker.wait_for("Worker started. Press Ctrl+C to stop.")
        worker.wait_for("in embedded mode")
        assert run_clients(("client.py", env), cwd=tmp_path) == [
            "Response: Reply to: What is machine learning? (turn 1)\n"
        ]
        stop_cleanly(worker)
    assert (tmp_path / "durable_agents.db").exists()


def test_the_agent_samples_on_postgres_and_redis(
    services: Services, tmp_path: Path, model_server: TestModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", services.redis_url)  # the consumer's connection set-up, in this process
    base = {
        **os.environ,
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "MODEL_SERVER_URL": model_server.url,
        "PYTHONPATH": python_path(str(SAMPLES)),
    }
    hubs = {script: new_taskhub("ref") for script in ("single_agent", "multi_agent", "streaming")}
    envs = {script: {**base, "TASKHUB": hub} for script, hub in hubs.items()}
    redis_client = redis.Redis.from_url(services.redis_url)
    for key in redis_client.scan_iter("agent:response:*"):
        redis_client.delete(key)
    # Started together: three worker start-ups overlap instead of adding up.
    single = Sample("single_agent_worker.py", envs["single_agent"], tmp_path)
    multi = Sample("multi_agent_worker.py", envs["multi_agent"], tmp_path)
    streaming = Sample("streaming_worker.py", envs["streaming"], tmp_path)
    try:
        for worker in (single, multi, streaming):
            worker.wait_for(" ready.")
        assert "Worker ready. Waiting for requests..." in single.output()
        # An app with agents gets an I/O pool with many slots by default: turns wait on the model.
        assert "concurrency: 64 (thread)" in single.output()
        assert "Registered agents: Physicist, Chemist" in multi.output()

        def answers(turn: int) -> str:
            return (
                f"Physicist: Reply to: Explain quantum entanglement (turn {turn})\n"
                f"Chemist: Reply to: Explain chemical bonds (turn {turn})\n"
            )

        jokes, multi_answers, streamed = run_clients(
            ("single_agent_client.py", envs["single_agent"]),
            ("multi_agent_client.py", envs["multi_agent"]),
            ("multi_agent_client.py", envs["streaming"]),
            cwd=tmp_path,
        )
        assert jokes == (
            "Joke 1: Reply to: Tell me a joke about clouds (turn 1)\n"
            "Joke 2: Reply to: Tell me another one (turn 2)\n"  # the same (default) session remembers
        )
        assert multi_answers == streamed == answers(1)
        # Again on the streaming worker: its handler keeps one redis.asyncio client, which must still work
        # on the later replies of the process.
        assert run_clients(("multi_agent_client.py", envs["streaming"]), cwd=tmp_path) == [answers(2)]

        keys = [key.decode() for key in redis_client.scan_iter("agent:response:*")]
        assert len(keys) == 4, keys
        consume_stream = load_sample("consumer").consume_stream
        replies = []
        for key in keys:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                cursor = asyncio.run(consume_stream(key.removeprefix("agent:response:")))
            assert cursor is None, f"the stream {key} never completed"  # the consumer returns at "complete"
            replies.append(printed.getvalue())
        assert sorted(replies) == sorted(
            f"Reply to: Explain {topic} (turn {turn})"
            for topic in ("quantum entanglement", "chemical bonds")
            for turn in (1, 2)
        )
        stop_cleanly(single, multi, streaming)
        assert "Event loop is closed" not in streaming.output()
    finally:
        for worker in (single, multi, streaming):
            worker.kill()
