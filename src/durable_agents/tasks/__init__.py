"""The Celery side: task functions that load state, step the engine and store results, and their dispatch."""
