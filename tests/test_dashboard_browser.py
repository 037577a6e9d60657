"""The dashboard in headless Chromium (Debian's, driven by Playwright) against real workers, Postgres and Redis.

Each test saves screenshots to artifacts/dashboard-*.png.
"""

from __future__ import annotations

import http.server
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from durable_agents import DurableAgentClient, DurableClient
from durable_agents.agents.proxy import SESSION_ORCHESTRATION
from durable_agents.api import create_app
from durable_agents.config import Settings
from durable_agents.ids import agent_session_instance_id
from durable_agents.testing import TestModelServer

from conftest import ARTIFACTS, Services, WorkerProcess, new_taskhub

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
API_KEY = "dashboard-test-key-0123456789"
OTHER_HUB_KEY = "a-key-of-another-task-hub-42"
WORDS = " ".join(f"token{i}" for i in range(16))


class DashboardServer:
    """The API app (with the dashboard) served by uvicorn on a free loopback port, in a thread."""

    def __init__(self, durable_app: Any, settings: Settings) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        #: The session cookie's name: per task hub and port, so dashboards on one host keep their own.
        self.cookie = f"durable_agents_{settings.taskhub}_{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(durable_app, settings), log_level="warning", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> DashboardServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the dashboard server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


class AttackerSite:
    """A page of another site: served on another loopback port, which makes it another origin."""

    def __init__(self, html: str) -> None:
        body = f"<!doctype html><html><body>{html}</body></html>".encode()

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> AttackerSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def settings_for(services: Services, taskhub: str, **options: Any) -> Settings:
    return Settings(database_url=services.database_url, redis_url=services.redis_url, taskhub=taskhub, **options)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), "install Debian's chromium: apt-get install -y chromium chromium-driver"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1360, "height": 900}, device_scale_factor=1)
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def dashboard(services: Services, worker: WorkerProcess) -> Iterator[DashboardServer]:
    """The workflows worker's task hub, with sign-in by API key."""
    import workflows

    keys = f"{worker.taskhub}:{API_KEY},elsewhere:{OTHER_HUB_KEY}"
    settings = settings_for(services, worker.taskhub, api_keys=keys)
    with DashboardServer(workflows.app, settings) as server:
        yield server


@pytest.fixture(scope="module")
def agents_dashboard(services: Services, agents_worker: WorkerProcess) -> Iterator[DashboardServer]:
    """The agents worker's task hub, with authentication disabled (loopback only)."""
    import agents_app

    with DashboardServer(agents_app.app, settings_for(services, agents_worker.taskhub, api_auth="disabled")) as server:
        yield server


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def sign_in(
    page: Page, dashboard: DashboardServer, path: str, key: str = API_KEY, wrong_key_first: bool = False
) -> None:
    """Opening a page signed out leads to the sign-in form; another hub's key is refused, this hub's lets in.

    (Failed sign-ins are throttled per address, so only some tests try a wrong key first.)"""
    page.goto(dashboard.url + path)
    assert "/login" in page.url
    if wrong_key_first:
        page.fill("input[name=api_key]", OTHER_HUB_KEY)
        page.click("button[type=submit]")
        assert page.locator(".alert-error").inner_text() == "That key is not valid for this task hub."
    page.fill("input[name=api_key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(dashboard.url + path)
    cookie = next(c for c in page.context.cookies() if c["name"] == dashboard.cookie)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and key not in cookie["value"]


def test_the_list_shows_a_running_instance_turn_completed_without_reload(
    client: DurableClient, dashboard: DashboardServer, page: Page
) -> None:
    instance_id = f"dash-live-{uuid.uuid4().hex[:8]}"
    client.schedule_new_orchestration("custom_status", instance_id=instance_id)
    client.wait_for_orchestration_start(instance_id)
    sign_in(page, dashboard, "/", wrong_key_first=True)

    row = page.locator(f'tr[data-instance="{instance_id}"]')
    row.locator('[data-status="RUNNING"]').wait_for()
    assert '"stage": "waiting"' in row.inner_text()  # the custom status, in the row
    page.evaluate("window.notReloaded = true")
    shot(page, "list-running")

    client.raise_event(instance_id, "proceed", data="go")
    row.locator('[data-status="COMPLETED"]').wait_for()
    assert page.evaluate("window.notReloaded") is True  # htmx swapped the rows; the page stayed
    shot(page, "list-completed")

    client.schedule_new_orchestration("empty", instance_id=f"dash-other-{uuid.uuid4().hex[:8]}")
    page.locator('tr[data-instance^="dash-other-"]').wait_for()
    page.fill("input[name=q]", "dash-live-")  # search by id prefix, and filter by status
    page.select_option("select[name=status]", "COMPLETED")
    page.wait_for_url("**/?status=COMPLETED&q=dash-live-")  # a filtered view can be bookmarked
    page.locator('tr[data-instance^="dash-other-"]').wait_for(state="detached")
    assert page.locator(f'tr[data-instance="{instance_id}"]').count() == 1


def test_the_list_filters_by_tag_and_a_failure_shows_the_tasks_it_failed_through(
    client: DurableClient, dashboard: DashboardServer, page: Page
) -> None:
    team = f"dash-team-{uuid.uuid4().hex[:8]}"
    failed = client.schedule_new_orchestration("parent_of_boom", tags={"team": team})
    untagged = client.schedule_new_orchestration("empty")
    client.wait_for_orchestration_completion(failed, timeout=30)
    sign_in(page, dashboard, f"/?tag=team%3D{team}")
    page.locator(f'tr[data-instance="{failed}"]').wait_for()
    assert page.locator(f'tr[data-instance="{untagged}"]').count() == 0
    page.fill("input[name=tag]", "no-equals-sign")
    page.locator("#instances [role=alert]").wait_for()
    assert "name=value" in page.locator("#instances [role=alert]").inner_text()

    page.goto(f"{dashboard.url}/instances/{failed}")
    links = page.locator(".failure-chain li").all_inner_texts()
    assert links == [
        f"sub-orchestration 'boom_with_retries' (task #1, instance '{failed}-child') failed — {failed}-child",
        "activity 'boom' (task #3, after 2 attempts) failed",
    ]
    assert page.locator(".failure-head h2").inner_text() == "RuntimeError"  # the innermost cause
    assert page.locator(f".tags a.tag:text-is('team={team}')").count() == 1
    shot(page, "failure-chain")


def test_the_timeline_of_a_fan_out_draws_overlapping_bars(
    client: DurableClient, dashboard: DashboardServer, page: Page
) -> None:
    instance_id = client.schedule_new_orchestration("staged_fan_out")
    assert client.wait_for_orchestration_completion(instance_id, timeout=60).output == pytest.approx(1.6)
    sign_in(page, dashboard, f"/instances/{instance_id}")

    def boxes(selector: str) -> list[tuple[float, float]]:
        found = page.locator(selector).evaluate_all(
            "bars => bars.map(b => { const r = b.getBoundingClientRect(); return [r.left, r.right]; })"
        )
        return [(left, right) for left, right in found]

    naps = boxes('.gantt-bar[data-label="nap"]')
    first, last = boxes('.gantt-bar[data-label="echo"]')
    assert len(naps) == 4
    assert max(left for left, _ in naps) < min(right for _, right in naps)  # all four run at one moment
    assert first[1] <= min(left for left, _ in naps) + 1  # the step before the fan-out ends as it starts
    assert last[0] >= max(right for _, right in naps) - 1  # and the one after starts once it is over
    assert page.locator('.gantt-bar[data-kind="timer"]').count() == 1
    assert "up to 4 in parallel" in page.locator(".stats").inner_text()
    shot(page, "timeline-fan-out")


def test_each_activity_of_a_fan_out_is_drawn_for_as_long_as_it_ran(
    client: DurableClient, dashboard: DashboardServer, page: Page
) -> None:
    from datetime import datetime

    instance_id = client.schedule_new_orchestration("uneven_fan_out")
    assert client.wait_for_orchestration_completion(instance_id, timeout=60).output == [0.05, 0.15, 0.3, 0.6]
    sign_in(page, dashboard, f"/instances/{instance_id}")
    found = page.locator('.gantt-bar[data-label="nap"]').evaluate_all(
        "bars => bars.map(b => [b.dataset.start, b.dataset.end, b.getBoundingClientRect().width])"
    )
    bars = sorted(
        ((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), width)
        for start, end, width in found
    )
    for (ran, _), slept in zip(bars, (0.05, 0.15, 0.3, 0.6), strict=True):
        assert slept <= ran < slept + 0.2, bars  # the activity's own run, not the wait for the fan-in
    widths = [width for _, width in bars]
    assert widths == sorted(widths) and widths[-1] > 4 * widths[0], bars
    # The instance's "Took" is the length of its timeline.
    took = page.locator(".stats .stat", has_text="Took").locator("dd").inner_text()
    assert took == page.locator(".bar-orchestration .dur").inner_text()
    shot(page, "timeline-uneven-fan-out")


def test_the_approve_button_resumes_a_waiting_instance(
    client: DurableClient, dashboard: DashboardServer, page: Page, worker: WorkerProcess
) -> None:
    instance_id = client.schedule_new_orchestration("approval", input={"timeout_seconds": 300})
    client.wait_for_orchestration_start(instance_id)
    sign_in(page, dashboard, f"/instances/{instance_id}")
    live = page.locator("#instance-live")
    assert live.get_attribute("data-status") == "RUNNING"
    # The callout says what it waits for (the dashboard has the app, so the event is named); not a warning.
    page.locator('#why[data-reason="waiting_for_event"]').wait_for()
    assert "'approval_received'" in page.locator("#why-message").inner_text()
    assert page.locator("#why.why-attention").count() == 0
    shot(page, "instance-waiting")

    page.evaluate("() => new Promise(done => document.addEventListener('htmx:afterSettle', done, {once: true}))")
    page.click('button[data-action="approve"]')  # after a live refresh: the form survives it
    page.locator('#instance-live[data-status="COMPLETED"]').wait_for()
    assert client.get_orchestration_state(instance_id).output == {  # type: ignore[union-attr]
        "status": "approved",
        "data": {"approved": True},
    }
    assert '"approved": true' in page.locator("#output").inner_text()
    assert page.locator('.marker[data-kind="event"]').count() == 1  # the approval, on the timeline
    assert page.locator("#why").count() == 0  # a finished instance needs no explaining
    shot(page, "instance-approved")

    page.click("nav.nav >> text=Workers")
    row = page.locator(f'#workers tr[data-node^="{worker.name}@"]')
    assert "approval" in row.inner_text() and row.locator("td").nth(4).inner_text() != "—"
    shot(page, "workers")


def test_event_buttons_are_offered_for_the_events_an_instance_waits_for_only(
    client: DurableClient,
    dashboard: DashboardServer,
    agents: DurableAgentClient,
    fresh_model: TestModelServer,
    agents_dashboard: DashboardServer,
    page: Page,
) -> None:
    timer_only = client.schedule_new_orchestration("long_timer")
    client.wait_for_orchestration_start(timer_only)
    sign_in(page, dashboard, f"/instances/{timer_only}")
    page.locator('#why[data-reason="waiting_for_timer"]').wait_for()
    assert page.locator('button[data-action="approve"]').count() == 0  # nothing would read an approval
    assert "It waits for no event now" in page.locator(".event-card").inner_text()
    shot(page, "instance-timer-only")
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == dashboard.cookie)
    headers = {"HX-Request": "true", "Origin": dashboard.url}
    with httpx.Client(base_url=dashboard.url, cookies={dashboard.cookie: cookie}, headers=headers) as http:
        forged = http.post(f"/instances/{timer_only}/approve", data={"name": "approval_received"})
        assert forged.status_code == 409 and "does not wait for 'approval_received' now" in forged.text
        kept = http.post(f"/instances/{timer_only}/events", data={"name": "later", "data": "1"})
        assert kept.status_code == 200 and "does not wait for it now" in kept.headers["hx-trigger"]
    client.terminate(timer_only)
    client.wait_for_orchestration_completion(timer_only)
    raised = [e["name"] for e in client.get_history(timer_only) if e["type"] == "EventRaised"]
    assert "approval_received" not in raised

    waiting = client.schedule_new_orchestration("approval", input={"timeout_seconds": 300})
    client.wait_for_orchestration_start(waiting)
    page.goto(f"{dashboard.url}/instances/{waiting}")
    page.locator('#why[data-reason="waiting_for_event"]').wait_for()
    assert page.locator('button[data-action="approve"]').get_attribute("data-event") == "approval_received"
    client.terminate(waiting)

    # A turn waiting for a tool approval waits for an event, which only the Approvals page decides.
    fresh_model.control.add_rule(
        match={"last_user_contains": "Tidy up", "last_message_role": "user"},
        reply={"tool_calls": [{"name": "delete_file", "arguments": {"path": "old.log"}}]},
    )
    janitor = agents.get_agent("Janitor")
    turn = f"@turn:{janitor.run_sync('Tidy up', session=janitor.create_session(), wait_for_response=False)}"
    page.goto(f"{agents_dashboard.url}/instances/{turn}")
    page.locator('#why[data-reason="waiting_for_event"]').wait_for()
    assert page.locator(".event-card").count() == 0
    agents.client.terminate_orchestration(turn)


def test_an_instance_no_live_worker_serves_shows_why_as_a_warning(services: Services, page: Page) -> None:
    import workflows

    hub = new_taskhub("orphan")  # no worker runs this task hub
    client = DurableClient(workflows.app, settings=settings_for(services, hub))
    instance_id = client.schedule_new_orchestration("approval", input={"timeout_seconds": 300})
    with DashboardServer(workflows.app, settings_for(services, hub, api_auth="disabled")) as server:
        page.goto(f"{server.url}/instances/{instance_id}")
        why = page.locator('#why.why-attention[data-reason="no_worker"]')
        why.wait_for()
        assert "Needs attention: no live worker" in why.inner_text()
        message = page.locator("#why-message").inner_text()
        assert f"no live worker of task hub '{hub}' serves orchestration 'approval'" in message
        assert "no live worker" in page.locator(".why-pending").inner_text()
        shot(page, "instance-no-worker")
        page.goto(f"{server.url}/workers")
        assert f"No live worker in task hub {hub}" in page.locator(".empty").inner_text()


def test_a_change_sent_from_another_site_or_with_bad_data_is_refused(
    client: DurableClient, dashboard: DashboardServer
) -> None:
    instance_id = client.schedule_new_orchestration("approval", input={"timeout_seconds": 300})
    with httpx.Client(base_url=dashboard.url) as browser_like:
        signed_in = browser_like.post("/login", data={"api_key": API_KEY, "next": "/"})
        assert signed_in.status_code == 303 and browser_like.cookies.get(dashboard.cookie)
        forged = browser_like.post(f"/instances/{instance_id}/terminate", headers={"Origin": "https://evil.example"})
        assert forged.status_code == 403
        assert client.get_orchestration_state(instance_id).runtime_status != "TERMINATED"  # type: ignore[union-attr]
        bad = browser_like.post(
            f"/instances/{instance_id}/events", data={"name": "x", "data": "{oops"}, headers={"HX-Request": "true"}
        )
        assert bad.status_code == 422 and bad.text.startswith("The event data is not valid JSON")
        own = browser_like.post(f"/instances/{instance_id}/terminate", headers={"Origin": dashboard.url})
        assert own.status_code == 303
    assert client.wait_for_orchestration_completion(instance_id).runtime_status == "TERMINATED"


def test_the_stream_view_shows_tokens_as_they_arrive(
    agents: DurableAgentClient, fresh_model: TestModelServer, agents_dashboard: DashboardServer, page: Page
) -> None:
    fresh_model.control.add_rule(reply={"content": WORDS, "chunk_delay_ms": 150})
    joker = agents.get_agent("Joker")
    session = joker.create_session()
    correlation_id = joker.run_sync("Tell me a long joke", session=session, wait_for_response=False)
    page.goto(f"{agents_dashboard.url}/streams/{correlation_id}")

    text = page.locator("#stream-text")
    lengths: list[int] = []
    while page.locator("#stream-state").get_attribute("data-state") != "complete" and len(lengths) < 4:
        seen = lengths[-1] if lengths else 0
        page.wait_for_function("n => document.getElementById('stream-text').textContent.length > n", arg=seen)
        lengths.append(len(text.inner_text()))
        if len(lengths) == 2:
            shot(page, "stream-live")
    assert len(lengths) == 4 and lengths == sorted(set(lengths))  # it grew, step by step, before it was done
    assert lengths[-1] < len(WORDS)
    page.locator('#stream-state[data-state="complete"]').wait_for()
    assert text.inner_text() == WORDS == joker.wait(correlation_id).text
    page.locator("#stream-head h1", has_text="Joker's reply").wait_for()  # the header learnt who answered
    shot(page, "stream-complete")

    page.goto(f"{agents_dashboard.url}/sessions/Joker/{session.key}")
    assert page.locator(".msg-assistant .bubble").last.inner_text() == WORDS
    shot(page, "session")


def test_a_page_of_another_site_cannot_start_approve_or_rebind_when_keys_are_off(
    services: Services, client: DurableClient, worker: WorkerProcess, browser: Browser, page: Page
) -> None:
    import workflows

    waiting = client.schedule_new_orchestration("approval", input={"timeout_seconds": 300})
    client.wait_for_orchestration_start(waiting)
    began = client.query_instances(instance_id_prefix=waiting)[0].created_at
    forged_approval = """<input name='{"approved": true, "forged": "' value='"}'>"""  # text/plain: name=value
    with DashboardServer(workflows.app, settings_for(services, worker.taskhub, api_auth="disabled")) as server:
        forms = (
            f'<form id="start" method="post" action="{server.url}/api/orchestrations/plain_function"></form>'
            f'<form id="approve" method="post" enctype="text/plain" '
            f'action="{server.url}/api/instances/{waiting}/events/approval_received">{forged_approval}</form>'
            f'<form id="dash-approve" method="post" action="{server.url}/instances/{waiting}/approve"></form>'
        )
        with AttackerSite(forms) as site:
            for form in ("start", "approve", "dash-approve"):
                page.goto(site.url)
                with page.expect_navigation() as sent:
                    page.evaluate(f"document.getElementById('{form}').submit()")
                assert sent.value is not None and sent.value.status == 403, form
            shot(page, "cross-site-refused")

        # DNS rebinding: the attacker's own name, resolving to this machine, reads nothing.
        port = server.url.rsplit(":", 1)[1]
        rebinding = browser.browser_type.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1"]
        )
        try:
            rebound = rebinding.new_page().goto(f"http://rebind.test:{port}/api/instances")
            assert rebound is not None and rebound.status == 403
            assert "DURABLE_AGENTS_ALLOWED_HOSTS" in rebound.text()
        finally:
            rebinding.close()

    # Nothing was started, and the approval that counts is the one a person sends.
    assert client.query_instances(name="plain_function", created_from=began) == []
    client.raise_event(waiting, "approval_received", data={"approved": True, "by": "a person"})
    final = client.wait_for_orchestration_completion(waiting)
    assert final.output == {"status": "approved", "data": {"approved": True, "by": "a person"}}


def test_sign_in_reads_no_large_body_and_slows_down_guessing(services: Services, worker: WorkerProcess) -> None:
    import workflows

    keys = f"{worker.taskhub}:{API_KEY}"
    with (
        DashboardServer(workflows.app, settings_for(services, worker.taskhub, api_keys=keys)) as server,
        httpx.Client(base_url=server.url, headers={"Origin": server.url}) as http,
    ):
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        huge = http.post("/login", content=b"api_key=" + b"x" * (1 << 20), headers=form)
        assert huge.status_code == 413 and "The form is over 16,384 bytes" in huge.text
        for attempt in range(5):
            assert http.post("/login", data={"api_key": f"a-wrong-key-{attempt:06d}"}).status_code == 401
        throttled = http.post("/login", data={"api_key": API_KEY, "next": "/"})  # even the right key waits now
        assert throttled.status_code == 429 and 0 < int(throttled.headers["retry-after"]) <= 60
        assert "Too many failed sign-ins from your address; try again in" in throttled.text


def test_pages_cannot_be_framed_and_a_signed_out_cookie_is_refused(
    services: Services, worker: WorkerProcess, dashboard: DashboardServer, page: Page
) -> None:
    import workflows

    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security" in message.text else None)
    sign_in(page, dashboard, "/workers")
    shown = page.goto(dashboard.url + "/")
    assert shown is not None
    assert "frame-ancestors 'none'" in shown.headers["content-security-policy"]
    assert shown.headers["x-frame-options"] == "DENY" and shown.headers["x-content-type-options"] == "nosniff"
    assert shown.headers["referrer-policy"] == "same-origin"
    page.locator("#instances").wait_for()
    page.wait_for_event(
        "requestfinished", lambda request: request.url.startswith(dashboard.url + "/partials/instances")
    )
    assert violations == []  # htmx (its polls included) and the page's script run under the policy
    cookie = next(c for c in page.context.cookies() if c["name"] == dashboard.cookie)

    open_settings = settings_for(services, worker.taskhub, api_auth="disabled")
    with DashboardServer(workflows.app, open_settings) as unguarded:
        frames = (
            f'<iframe id="open" src="{unguarded.url}/"></iframe>'
            f'<iframe id="signed" src="{dashboard.url}/login"></iframe>'
            f'<form id="out" method="post" action="{dashboard.url}/logout"></form>'
        )
        with AttackerSite(frames) as site:
            page.goto(site.url, wait_until="load")
            framed = [frame for frame in page.frames if frame != page.main_frame]
            assert len(framed) == 2 and not any(f.url.startswith("http://") for f in framed), [f.url for f in framed]
            assert len([text for text in violations if "frame-ancestors 'none'" in text]) == 2
            shot(page, "framing-refused")
            with page.expect_navigation() as sent:
                page.evaluate("document.getElementById('out').submit()")
            assert sent.value is not None and sent.value.status == 403  # another site cannot sign you out
    page.goto(dashboard.url + "/")
    assert "/login" not in page.url

    page.click("text=Sign out")
    page.wait_for_url("**/login")
    with httpx.Client(base_url=dashboard.url, cookies={dashboard.cookie: cookie["value"]}) as replayed:
        assert replayed.get("/").status_code == 303  # the copied cookie no longer signs in, though not expired


def test_two_dashboards_on_one_host_keep_their_own_sign_ins(
    services: Services, worker: WorkerProcess, dashboard: DashboardServer, page: Page
) -> None:
    import workflows

    other_hub, other_key = new_taskhub("second"), "the-second-dashboard-key-0042"
    settings = settings_for(services, other_hub, api_keys=f"{other_hub}:{other_key}")
    with DashboardServer(workflows.app, settings) as second:
        sign_in(page, dashboard, "/")
        sign_in(page, second, "/", key=other_key)
        page.goto(dashboard.url + "/")
        assert "/login" not in page.url and worker.taskhub in page.locator(".hub").inner_text()
        page.goto(second.url + "/")
        assert "/login" not in page.url and other_hub in page.locator(".hub").inner_text()


def test_a_reply_that_was_never_asked_for_or_cannot_be_read_says_so(
    services: Services, agents_dashboard: DashboardServer, page: Page
) -> None:
    import agents_app

    unknown = uuid.uuid4().hex
    shown = page.goto(f"{agents_dashboard.url}/streams/{unknown}")
    assert shown is not None and shown.status == 404  # not a minute of "Waiting for the model…"
    assert f"No agent reply '{unknown}' was asked for" in page.locator("main").inner_text()
    with httpx.Client(base_url=agents_dashboard.url, timeout=20) as http:
        assert http.get(f"/streams/{unknown}/events").status_code == 404
        malformed = http.get(f"/streams/{unknown}/events", headers={"Last-Event-ID": "0-0; FLUSHALL"})
        assert malformed.status_code == 400 and "is not a position in a reply" in malformed.text

    dead_database = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    settings = settings_for(services, new_taskhub("nodb"), api_auth="disabled").model_copy(
        update={"database_url": dead_database}
    )
    with DashboardServer(agents_app.app, settings) as down, httpx.Client(base_url=down.url, timeout=20) as http:
        events = http.get(f"/streams/{unknown}/events")
        assert events.status_code == 503 and "cannot connect to the database" in events.text  # not a broken 200
        page.goto(f"{down.url}/streams/{unknown}")
        assert "cannot connect to the database" in page.locator("main").inner_text()
        shot(page, "stream-unavailable")


def test_the_list_leaves_out_agent_internals_unless_asked_and_shows_idle_sessions_as_idle(
    agents: DurableAgentClient, fresh_model: TestModelServer, agents_dashboard: DashboardServer, page: Page
) -> None:
    joker = agents.get_agent("Joker")
    session = joker.create_session()
    reply = joker.run_sync("Hello there", session=session)
    # A session as it was before sessions were entities: an orchestration, idle between turns.
    legacy = agent_session_instance_id("Joker", session.key)
    agents.client.schedule_new_orchestration(
        SESSION_ORCHESTRATION, input={"agent": "Joker", "session": session.key}, instance_id=legacy
    )
    agents.client.wait_for_orchestration_start(legacy)
    page.goto(agents_dashboard.url + "/")
    page.locator("#instances").wait_for()
    assert page.locator('tr[data-instance^="@"]').count() == 0  # the engine's own rows are not the user's

    page.check("input[name=internal]")
    page.wait_for_url("**/?internal=1")  # the toggle is part of the bookmarkable view
    idle = page.locator(f'tr[data-instance="{legacy}"]')
    idle.wait_for()
    badge = idle.locator("td").first
    assert badge.inner_text().strip() == "Idle" and badge.locator('[data-status="RUNNING"][data-idle="true"]').count()
    turn = page.locator(f'tr[data-instance="@turn:{reply.correlation_id}"]')
    assert turn.locator('[data-status="COMPLETED"]').count() == 1
    agents.client.terminate_orchestration(legacy)
    shot(page, "list-with-agent-internals")


def test_the_small_things_read_right(
    client: DurableClient,
    dashboard: DashboardServer,
    agents: DurableAgentClient,
    fresh_model: TestModelServer,
    agents_dashboard: DashboardServer,
    page: Page,
) -> None:
    def lines(selector: str) -> int:
        """How many lines the inline element `selector` takes (a wrapped one has a box per line)."""
        return int(page.locator(selector).first.evaluate("element => element.getClientRects().length"))

    page.goto(dashboard.url + "/login")
    intro, title = page.locator(".login-card > p.muted"), page.locator(".login-card h1")
    assert intro.bounding_box()["x"] == title.bounding_box()["x"]  # type: ignore[index]  # not indented

    failed = client.schedule_new_orchestration("uncaught_failure")
    client.wait_for_orchestration_completion(failed)
    sign_in(page, dashboard, f"/instances/{failed}")
    arrow = page.locator("#stack-trace > summary").evaluate("s => getComputedStyle(s, '::before').content")
    assert arrow == '"▸"'  # a disclosure arrow says the stack trace opens

    waiting = client.schedule_new_orchestration("approval", input={"timeout_seconds": 300})
    client.wait_for_orchestration_start(waiting)
    page.goto(f"{dashboard.url}/instances/{waiting}")
    message = page.locator("#why-message").inner_text()
    assert " UTC" in message and not re.search(r"\dT\d\d:\d\d", message), message  # not raw ISO 8601
    client.terminate(waiting)

    page.set_viewport_size({"width": 760, "height": 900})
    page.goto(dashboard.url + "/workers")
    assert lines("#workers [data-slots]") == 1  # "8 slots", never "8 / slots"
    shot(page, "workers-narrow")

    session = agents.get_agent("Joker").create_session()
    agents.get_agent("Joker").run_sync("Hi", session=session)
    page.goto(f"{agents_dashboard.url}/sessions/Joker/{session.key}")
    assert lines(".turn-meta .muted") == 1  # "just now · 719 ms" on one line
    shot(page, "session-narrow")


def test_the_schedules_page_shows_the_next_fire_time_and_latest_runs_and_pauses_resumes_and_triggers(
    client: DurableClient, dashboard: DashboardServer, page: Page
) -> None:
    schedule_id = f"daily-{uuid.uuid4().hex[:6]}"
    client.create_schedule(schedule_id, "plain_function", input="from the page", cron="0 9 * * MON-FRI")
    sign_in(page, dashboard, "/schedules")
    row = page.locator(f'#schedule-table tr[data-schedule="{schedule_id}"]')
    assert "At 09:00 on Monday through Friday" in row.inner_text()
    assert row.locator(".next-fire").inner_text().startswith("in ") and "none yet" in row.inner_text()

    row.locator('button[data-action="pause"]').click()
    page.locator(f'tr[data-schedule="{schedule_id}"][data-paused="true"]').wait_for()
    assert client.get_schedule(schedule_id).paused  # type: ignore[union-attr]
    row.locator('button[data-action="trigger"]').click()  # a paused schedule can still be run by hand
    page.locator(f'tr[data-schedule="{schedule_id}"] .badge[data-status="COMPLETED"]').wait_for()
    run = row.locator("a.mono").first.inner_text()
    assert run.startswith(f"{schedule_id}@manual-")
    assert client.get_orchestration_state(run).output == {"echo": "from the page"}  # type: ignore[union-attr]
    row.locator('button[data-action="resume"]').click()
    page.locator(f'tr[data-schedule="{schedule_id}"][data-paused="false"]').wait_for()
    shot(page, "schedules")
    client.delete_schedule(schedule_id)
