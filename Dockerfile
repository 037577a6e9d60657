FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# With Flower, so one image runs every service of docker-compose.yml.
RUN pip install --no-cache-dir ".[flower]"
COPY examples ./examples
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["durable-agents"]
CMD ["--help"]
