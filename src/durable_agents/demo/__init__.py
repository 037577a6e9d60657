"""`durable-agents demo`: every pattern of the programming model, run end to end in one process."""

from .runner import PATTERNS, PatternResult, run_demo

__all__ = ["PATTERNS", "PatternResult", "run_demo"]
