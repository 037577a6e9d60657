"""The public API is what `durable_agents.__all__` says; changing it is a deliberate act."""

import durable_agents


def test_public_api() -> None:
    assert sorted(durable_agents.__all__) == [
        "ActivityContext",
        "ActivityNotRegisteredError",
        "Agent",
        "AgentCallbackContext",
        "AgentError",
        "AgentFunctionApp",
        "AgentNotRegisteredError",
        "AgentResponse",
        "AgentResponseCallback",
        "AgentResponseCallbackProtocol",
        "AgentRunError",
        "AgentSession",
        "AsyncDurableClient",
        "AzureOpenAIChatClient",
        "ConfigurationError",
        "DurableAIAgentClient",
        "DurableAIAgentWorker",
        "DurableAgentClient",
        "DurableAgentsError",
        "DurableApp",
        "DurableClient",
        "DurableOrchestrationContext",
        "EventTimeoutError",
        "Explanation",
        "FailureDetails",
        "IncompleteReplyError",
        "InstanceExistsError",
        "InstanceNotFoundError",
        "InvalidInstanceStateError",
        "KeepLast",
        "ModelCallError",
        "NonDeterminismError",
        "NotRegisteredError",
        "OpenAIChatClient",
        "OrchestrationContext",
        "OrchestrationNotRegisteredError",
        "OrchestrationState",
        "OrchestrationStatus",
        "OrchestrationYieldError",
        "PayloadTooLargeError",
        "RetryPolicy",
        "SchemaMismatchError",
        "SerializationError",
        "SessionInfo",
        "SessionNotFoundError",
        "Settings",
        "StructuredOutputError",
        "Summarize",
        "Task",
        "TaskCancelledError",
        "TaskFailedError",
        "ToolLoopError",
        "Usage",
        "WaitTimeoutError",
        "WorkerInfo",
        "__version__",
        "chat_client_from_env",
        "current_activity",
    ]
    for name in durable_agents.__all__:
        assert hasattr(durable_agents, name), name


def test_every_error_is_a_durable_agents_error() -> None:
    for name in durable_agents.__all__:
        value = getattr(durable_agents, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, durable_agents.DurableAgentsError), name
