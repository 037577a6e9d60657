FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# With Flower, so one image runs every service of docker-compose.yml, and the OpenTelemetry SDK (README, "Telemetry").
RUN pip install --no-cache-dir ".[flower,otel]"
COPY examples ./examples
# Not root: a worker runs your code and the models' tool calls (Celery warns about root at every start).
RUN useradd --system --uid 10001 --home-dir /app --no-create-home durable
USER durable
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["durable-agents"]
CMD ["--help"]
