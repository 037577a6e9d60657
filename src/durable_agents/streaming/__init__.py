"""Resumable token streams: agent replies written to Redis Streams, read from any cursor."""

from .redis_stream import RedisStreamCallback, StreamChunk, read_stream, stream_key

__all__ = ["RedisStreamCallback", "StreamChunk", "read_stream", "stream_key"]
