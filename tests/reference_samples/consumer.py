import os

import redis.asyncio as redis

async def consume_stream(correlation_id: str, cursor: str = "0"):
    """Resume streaming from cursor position."""
    r = redis.from_url(os.environ["REDIS_URL"])
    stream_key = f"agent:response:{correlation_id}"

    current_cursor = cursor

    while True:
        # Read from cursor position
        entries = await r.xread(
            {stream_key: current_cursor},
            count=10,
            block=1000
        )

        if not entries:
            break

        for stream, messages in entries:
            for message_id, data in messages:
                if b"chunk" in data:
                    print(data[b"chunk"].decode(), end="")
                    current_cursor = message_id
                elif b"status" in data and data[b"status"] == b"complete":
                    return

    # Return cursor for resumption
    return current_cursor
