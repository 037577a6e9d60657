"""`python -m bench`: the cost of durability, measured side by side with plain Celery in one run.

Starts its own workers (prefork pool by default) on a fresh task hub, runs each workload `--runs` times
against the durable engine and, where one exists, against plain Celery on the same Redis, and
prints medians with min and max; writes bench/results/latest.json and, with matplotlib
(`pip install -e ".[bench]"`), bench/results/latest.png. Needs DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
ALL = ["chain", "fan_out", "long_history", "waiting", "agents", "recovery", "entities"]
TARGETS = {
    ("chain", "steps_per_s"): ">= 0.8x baseline",
    ("fan_out", "seconds"): "<= 1.0x baseline",
    ("long_history", "ratio"): "<= 1.5",
    ("waiting", "worker_slots_held"): "0",
    ("waiting", "bytes_per_instance"): "< 2048",
    ("agents", "overhead_ms"): "< 5",
    ("recovery", "seconds"): "< 10",
    ("entities", "counter_exact"): "1",
    ("entities", "total_kept"): "1",
}


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per workload (the median is reported)")
    parser.add_argument("--pool", default="prefork", help="Celery pool of every worker, durable and baseline alike")
    parser.add_argument("--concurrency", type=int, default=4, help="worker slots of each worker")
    parser.add_argument("--waiting", type=int, default=10_000, help="instances in the waiting workload")
    parser.add_argument("--long-steps", type=int, default=2000, help="steps of the long-history instance")
    parser.add_argument("--only", nargs="*", choices=ALL, default=ALL, help="workloads to run")
    options = parser.parse_args()

    hub = f"bench{uuid.uuid4().hex[:8]}"
    # Default settings throughout: the lease (60 s) included, which recovery must not wait for.
    os.environ.update({"TASKHUB": hub})
    sys.path.insert(0, str(BENCH_DIR))
    from durable_agents.store.schema import upgrade
    from durable_agents.testing import TestModelServer

    from . import workloads
    from .harness import celery_worker, durable_worker

    console = Console()
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    with TestModelServer(latency_ms=50) as model:
        os.environ["MODEL_SERVER_URL"] = model.url
        import engine_app

        from durable_agents import DurableClient

        upgrade(engine_app.app.settings.database_url)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH_DIR.parent / "src"), str(BENCH_DIR)])}
        workers = [durable_worker(env, options.pool, options.concurrency)]
        baseline = celery_worker(env, options.pool, options.concurrency)
        client = DurableClient(engine_app.app)
        try:
            for name in options.only:
                console.print(f"[bold]{name}[/] ({options.runs if name != 'waiting' else 1} runs)")
                runs = options.runs if name != "waiting" else 1
                for _ in range(runs):
                    try:
                        durable, base = run_once(name, client, options, workers, env, workloads)
                    except Exception as error:  # report what did run; say what did not
                        console.print(f"[red]{name} failed: {error!r}[/]")
                        break
                    results.setdefault(name, {"durable": [], "baseline": []})["durable"].append(durable)
                    if base is not None:
                        results[name]["baseline"].append(base)
        finally:
            for worker in workers:
                worker.stop()
            baseline.stop()
    report(console, results, options)


def run_once(name: str, client: Any, options: Any, workers: list[Any], env: dict[str, str],
             workloads: Any) -> tuple[dict[str, float], dict[str, float] | None]:  # fmt: skip
    from .harness import durable_worker

    if name == "chain":
        return workloads.chain_durable(client), workloads.in_thread(workloads.chain_celery)
    if name == "fan_out":
        return workloads.fan_out_durable(client), workloads.in_thread(workloads.fan_out_celery)
    if name == "long_history":
        return workloads.long_history(client, options.long_steps), None
    if name == "waiting":

        def active() -> int:
            replies = client.app.control.inspect(timeout=2).active() or {}
            return sum(len(tasks) for tasks in replies.values())

        return workloads.waiting(client, options.waiting, active), None
    if name == "entities":
        from .entities import entities

        return entities(client), None
    if name == "agents":
        model_url, instructions = os.environ["MODEL_SERVER_URL"], client.app.agent("Benchy").instructions
        plain = workloads.in_thread(lambda: workloads.agents_celery(model_url, instructions))
        return workloads.agents(client, model_url), plain
    # recovery: a second worker stands by; the one holding the activity's lease is killed.
    workers.append(durable_worker(env, options.pool, options.concurrency, name="standby"))

    def kill_owner(owner: str) -> float:
        group = os.getpgid(int(owner.split(":")[1]))  # the pool child's group is its worker's
        victim = next(w for w in workers if w.process.pid == group)
        victim.kill()
        workers.remove(victim)
        return time.time()

    return workloads.recovery(client, kill_owner), None


def report(console: Console, results: dict[str, dict[str, list[dict[str, float]]]], options: Any) -> None:
    table = Table("workload", "figure", "durable: median (min-max)", "plain Celery", "ratio", "target")
    summary: dict[str, Any] = {"options": vars(options), "workloads": {}}
    for name, sides in results.items():
        figures = sides["durable"][0].keys()
        summary["workloads"][name] = {}
        for figure in figures:
            durable = spread([run[figure] for run in sides["durable"]])
            base = spread([run[figure] for run in sides["baseline"]]) if sides["baseline"] else None
            ratio = durable["median"] / base["median"] if base and base["median"] else None
            summary["workloads"][name][figure] = {"durable": durable, "baseline": base, "ratio": ratio}
            table.add_row(
                name,
                figure,
                f"{durable['median']:.3g} ({durable['min']:.3g}-{durable['max']:.3g})",
                f"{base['median']:.3g} ({base['min']:.3g}-{base['max']:.3g})" if base else "",
                f"{ratio:.2f}" if ratio is not None else "",
                TARGETS.get((name, figure), ""),
            )
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(summary, indent=2))
    chart(summary, console)


def chart(summary: dict[str, Any], console: Console) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        console.print("matplotlib is not installed: no chart (pip install -e '.[bench]')", markup=False)
        return
    ratios = [
        (f"{name}\n{figure}", values["ratio"])
        for name, figures in summary["workloads"].items()
        for figure, values in figures.items()
        if values["ratio"] is not None
    ]
    if not ratios:
        return
    fig, ax = plt.subplots(figsize=(2 + 1.8 * len(ratios), 4))
    ax.bar([label for label, _ in ratios], [ratio for _, ratio in ratios], color="tab:blue")
    ax.axhline(1.0, color="tab:orange", linestyle="--", label="plain Celery = 1")
    ax.set_ylabel("durable-agents / plain Celery (median)")
    ax.set_title("The cost of durability")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "latest.png", dpi=100)
    console.print(f"chart: {RESULTS / 'latest.png'}")


if __name__ == "__main__":
    main()
