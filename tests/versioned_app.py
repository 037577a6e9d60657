"""Code that changes between deploys, for tests/test_versions.py: its version and behaviour come from the environment.

DA_TEST_APP_VERSION picks the code: "1" the original; "2" the same orchestration with one change under
`is_patched` and one by version; "3" a change made without a patch. DA_TEST_VERSION_MATCH and
DA_TEST_ON_MISMATCH set the worker's versioning. DA_TEST_FIXED=1 deploys the fix of `charge`'s bug.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from durable_agents import DurableApp, OrchestrationContext, VersioningOptions
from durable_agents.orchestrator.versions import compare_versions

VERSION = os.environ.get("DA_TEST_APP_VERSION", "1")
app = DurableApp(
    "durable_agents_versions",
    version=VERSION,
    versioning=VersioningOptions(
        match=os.environ.get("DA_TEST_VERSION_MATCH", "none"),  # type: ignore[arg-type]
        on_mismatch=os.environ.get("DA_TEST_ON_MISMATCH", "reject"),  # type: ignore[arg-type]
    ),
)
EFFECTS_DIR = Path(os.environ.get("DA_TEST_EFFECTS_DIR", "/tmp/durable-agents-effects"))


def _effect(kind: str, key: str) -> None:
    """One line per run of an activity, so a test counts how often it ran."""
    EFFECTS_DIR.mkdir(parents=True, exist_ok=True)
    with (EFFECTS_DIR / f"{kind}-{key}").open("a") as f:
        f.write("ran\n")


@app.activity
def step_a(key: str) -> str:
    return "step_a"


@app.activity
def step_b(key: str) -> str:
    return "step_b"


@app.activity
def step_c(key: str) -> str:
    return "step_c"


@app.activity
def finish(branch: str) -> str:
    return branch


@app.orchestration
def deploy_flow(context: OrchestrationContext) -> Any:
    if VERSION == "3":  # changed without a patch: replays of older histories diverge at task #1
        before = yield context.call_activity(step_c, input=context.instance_id)
    elif VERSION == "2" and context.is_patched("use-step-b"):
        before = yield context.call_activity(step_b, input=context.instance_id)
    else:
        before = yield context.call_activity(step_a, input=context.instance_id)
    context.set_custom_status("waiting")
    yield context.wait_for_external_event("go")
    newer = compare_versions(context.version, "2") >= 0
    after = yield context.call_activity(finish, input="v2" if newer else "v1")
    return {"before": before, "after": after, "version": context.version}


@app.orchestration
def parent_flow(context: OrchestrationContext) -> Any:
    child = yield context.call_sub_orchestrator(child_flow)
    return {"parent": context.version, "child": child}


@app.orchestration
def child_flow(context: OrchestrationContext) -> Any:
    return context.version


# -- rewind: an activity bug fixed by a deploy -----------------------------------------------------


@app.activity
def reserve(key: str) -> str:
    _effect("reserve", key)
    return f"reserved {key}"


@app.activity
def charge(key: str) -> str:
    _effect("charge", key)
    if os.environ.get("DA_TEST_FIXED") != "1":
        raise ValueError("currency code missing (the bug the next deploy fixes)")
    return f"charged {key}"


@app.activity
def ship(key: str) -> str:
    _effect("ship", key)
    return f"shipped {key}"


@app.orchestration
def order_flow(context: OrchestrationContext) -> Any:
    key = context.get_input()
    reserved = yield context.call_activity(reserve, input=key)
    payment = yield context.call_sub_orchestrator(payment_flow, input=key)
    shipped = yield context.call_activity(ship, input=key)
    return [reserved, payment, shipped]


@app.orchestration
def payment_flow(context: OrchestrationContext) -> Any:
    key = context.get_input()
    yield context.call_activity(reserve, input=f"{key}-payment")
    charged = yield context.call_activity(charge, input=key)
    return charged
