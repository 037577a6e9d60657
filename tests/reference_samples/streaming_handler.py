import redis.asyncio as redis
from durable_agents import AgentResponseCallbackProtocol, AgentCallbackContext
from typing import AsyncIterator

class RedisStreamResponseHandler(AgentResponseCallbackProtocol):
    """Reliable streaming using Redis Streams."""

    def __init__(self, redis_client: redis.Redis, ttl_seconds: int = 3600):
        self.redis = redis_client
        self.ttl = ttl_seconds

    async def handle_agent_response(
        self,
        context: AgentCallbackContext,
        response_stream: AsyncIterator[str]
    ):
        """Stream agent responses to Redis."""
        stream_key = f"agent:response:{context.correlation_id}"

        async for chunk in response_stream:
            # Write to Redis Stream
            await self.redis.xadd(
                stream_key,
                {"chunk": chunk, "timestamp": context.timestamp}
            )

        # Set expiration
        await self.redis.expire(stream_key, self.ttl)

        # Mark as complete
        await self.redis.xadd(
            stream_key,
            {"status": "complete"}
        )
