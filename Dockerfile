# GPU image: `docker build -t dl-assistant .` then
# `docker run --gpus all -p 7860:7860 -v assistant-data:/data -v hf-cache:/hf-cache dl-assistant`
# Installs exactly what `make run` installs (same Makefile target, same pyproject extras).
FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/hf-cache \
    ASSISTANT_DATA_DIR=/data \
    ASSISTANT_HOST=0.0.0.0

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev build-essential make \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md Makefile ./
COPY assistant ./assistant
COPY corpus ./corpus
COPY prompts ./prompts
COPY tests/goldsets ./tests/goldsets
RUN make .venv/.installed

VOLUME ["/data", "/hf-cache"]
EXPOSE 7860
CMD ["make", "run"]
