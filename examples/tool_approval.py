"""Tool approval: the Janitor agent may delete files only once a person approves each call.

The turn waits for the decisions durably (rows in the store, no worker slot held; it could wait for
days and across restarts). Here the program plays the person: it approves one call, with edited
arguments, and rejects the other with a reason the model reads.

Run it in one process (embedded mode: a SQLite file in the working directory, no services):

    python examples/tool_approval.py

Or with Postgres and Redis, after `durable-agents db upgrade`: run `durable-agents worker
tool_approval:app` in examples/, then this script with the same DATABASE_URL and REDIS_URL. Decide
from another terminal instead with `durable-agents approvals list` and `durable-agents approvals
approve|reject ID`, or on the dashboard's Approvals page.
"""

from __future__ import annotations

import time

from durable_agents import DurableAgentClient, DurableApp, DurableClient, ToolApproval, chat_client_from_env
from durable_agents.agents.environment import is_offline, offline_model_server

chat = chat_client_from_env()
app = DurableApp()


@app.durable_tool(requires_approval=True)
def delete_file(path: str) -> str:
    """Delete a file from the shared drive."""
    return f"deleted {path}"


app.add_agent(chat.as_agent(name="Janitor", instructions="You tidy up the shared drive.", tools=[delete_file]))

if is_offline(chat):
    # What a real model would do: ask to delete two files.
    offline_model_server().control.add_rule(
        match={"tool_offered": "delete_file", "last_message_role": "user"},
        reply={
            "tool_calls": [
                {"name": "delete_file", "arguments": {"path": "old.log"}},
                {"name": "delete_file", "arguments": {"path": "notes.txt"}},
            ]
        },
    )


def pending_requests(client: DurableClient, count: int, timeout: float = 300.0) -> list[ToolApproval]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.list_pending_approvals(agent="Janitor")
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"the Janitor asked for no {count} approvals within {timeout:g}s")


def main() -> None:
    client = DurableClient(app)
    janitor = DurableAgentClient(client).get_agent("Janitor")
    correlation_id = janitor.run_sync("Tidy up the shared drive", wait_for_response=False)
    for request in pending_requests(client, 2):
        print(f"Waiting for approval: {request.tool}({request.arguments}) for agent {request.agent}")
        if request.arguments["path"] == "old.log":
            client.approve_tool_call(request.approval_id, arguments={"path": "old.log.1"})
            print("  approved, with the path changed to old.log.1")
        else:
            client.reject_tool_call(request.approval_id, reason="notes.txt is still in use")
            print("  rejected: notes.txt is still in use")
    response = janitor.wait(correlation_id)
    for message in response.messages:
        if message["role"] == "tool":
            print(f"Tool result: {message['content']}")
    print(f"Janitor: {response.text}")


if __name__ == "__main__":
    main()
