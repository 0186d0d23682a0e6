# syntax=docker/dockerfile:1.7
# terse images. One Dockerfile, two variants picked by an explicit build argument (never detected:
# no GPU is visible while an image builds):
#   docker build --build-arg TORCH_VARIANT=cuda -t terse:cuda .  # CUDA runtime base, CUDA torch, bitsandbytes
#   docker build --build-arg TORCH_VARIANT=cpu  -t terse:cpu  .  # Python slim base, CPU torch, no CUDA libraries
# Installation is scripts/setup.sh, the same script `make setup` runs (one source of truth).
# The embedded model is converted here, at build time, into /opt/terse/models (read-only, owned by
# root): the container starts offline in seconds, and a volume mounted on the writable cache
# (/var/cache/terse: TERSE_CACHE_DIR, HF_HOME) never hides it.

ARG TORCH_VARIANT=cuda
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04

# ---- a Python interpreter on each base --------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS os-cpu

FROM ${CUDA_IMAGE} AS os-cuda
# The base image's tag pins the OS release; Ubuntu drops superseded package versions from its archive,
# so exact apt pins would break rebuilds without making them more reproducible.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# ---- builder: install terse into /opt/venv, convert the embedded model ------------------------------
# os-cpu or os-cuda: a stage of this file, not an image, so it has no tag.
# hadolint ignore=DL3006
FROM os-${TORCH_VARIANT} AS builder
ARG TORCH_VARIANT
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts/setup.sh scripts/setup.sh
COPY app app
COPY compressors compressors
# terse-client, for `terse compress` in the image.
COPY clients/python clients/python
# The install step: scripts/setup.sh, non-editable, without the dev extras, torch build named explicitly.
RUN --mount=type=cache,target=/root/.cache/pip \
    VENV=/opt/venv EDITABLE=0 EXTRAS='' TORCH_VARIANT="${TORCH_VARIANT}" PYTHON=python3 bash scripts/setup.sh
# The CPU image must carry no CUDA libraries; the CUDA image must carry a CUDA torch.
RUN /opt/venv/bin/python -c "import sys, importlib.metadata as md, torch; \
nv = sorted(d.metadata['Name'] for d in md.distributions() if d.metadata['Name'].lower().startswith('nvidia')); \
ok = (torch.version.cuda is None and not nv) if sys.argv[1] == 'cpu' else torch.version.cuda is not None; \
sys.exit(0 if ok else f'torch {torch.__version__} cuda={torch.version.cuda} nvidia={nv} in a {sys.argv[1]} image')" \
    "${TORCH_VARIANT}"
# Convert the embedded model offline, from the installed package (not /src), into a read-only folder.
WORKDIR /
RUN HF_HUB_OFFLINE=1 TERSE_CACHE_DIR=/opt/terse /opt/venv/bin/python -c \
    "from compressors.scorer import converted_dir; print(converted_dir())" \
    && chmod -R a-w,a+rX /opt/terse/models

# ---- runtime ----------------------------------------------------------------------------------------
# hadolint ignore=DL3006
FROM os-${TORCH_VARIANT} AS runtime
ARG TORCH_VARIANT
LABEL org.opencontainers.image.title="terse" \
      org.opencontainers.image.description="Prompt compression (LLMLingua, LongLLMLingua) as an HTTP service" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 terse \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/cache/terse --no-create-home \
       --shell /usr/sbin/nologin terse \
    && mkdir -p /var/cache/terse \
    && chown 10001:10001 /var/cache/terse
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/terse /opt/terse
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TERSE_VARIANT=${TORCH_VARIANT} \
    TERSE_EMBEDDED_DIR=/opt/terse/models \
    TERSE_CACHE_DIR=/var/cache/terse \
    HF_HOME=/var/cache/terse/hf \
    XDG_CACHE_HOME=/var/cache/terse/xdg \
    HOME=/var/cache/terse
# Writable: models pulled by id (TERSE_MODEL=org/name) land here on first start, or pre-fetched (README, Deploy).
VOLUME ["/var/cache/terse"]
WORKDIR /opt/terse
USER 10001:10001
EXPOSE 8000
# Exec form all the way down: python is PID 1 and receives SIGTERM itself; the app flips readiness
# off, finishes in-flight work (TERSE_DRAIN_SECONDS) and exits. One process, one uvicorn worker, one
# model: run one container per GPU.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["python", "-m", "app"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
