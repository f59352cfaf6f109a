# The fleet (Locust master or worker) and the reference CSMS, for docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY fleet ./fleet
COPY locustfiles ./locustfiles
RUN pip install --no-cache-dir .
# Locust's web UI, the master's port for workers, /metrics, the reference CSMS.
EXPOSE 8089 5557 9646 9000
CMD ["fleet", "--help"]
