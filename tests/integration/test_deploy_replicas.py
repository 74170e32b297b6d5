"""The replicated deployment's files (docker-compose.replicas.yml, docker/lb, docker/postgres),
checked without an engine: each replica has its own id and cache volume on the shared database,
nginx balances over exactly the replicas compose defines, and Compose itself accepts the file
(Debian's docker-compose 1.29, where installed). nginx's routing is run for real in
test_lb_affinity.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FILE = ROOT / "docker-compose.replicas.yml"
ENV = {"EVENTVSTREAM_API_KEYS": '["k"]', "EVENTVSTREAM_DB_PASSWORD": "pw"}


def _config() -> dict:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    result = subprocess.run(
        ["docker-compose", "-f", str(FILE), "config"],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_replicas_share_the_database_with_their_own_ids_and_caches() -> None:
    config = _config()
    services = config["services"]
    assert set(services) == {"postgres", "evs-a", "evs-b", "lb", "vllm"}
    ids, caches = set(), set()
    for name in ("evs-a", "evs-b"):
        env = services[name]["environment"]
        assert env["EVS_MEMORY__BACKEND"] == "postgres"
        assert env["EVS_MEMORY__URL"] == "postgresql://evs:pw@postgres:5432/evs"
        ids.add(env["EVS_SERVER__REPLICA_ID"])
        mounts = [str(v) for v in services[name]["volumes"]]
        caches |= {m.split(":")[0] for m in mounts if m.endswith(":/data") or "/data" in m}
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert len(ids) == 2 and len(caches) == 2  # one FAISS cache directory per replica


def test_nginx_balances_over_the_compose_replicas() -> None:
    conf = (ROOT / "docker" / "lb" / "nginx.conf").read_text()
    services = yaml.safe_load(FILE.read_text())["services"]
    replicas = {n for n in services if n.startswith("evs-")}
    for upstream in ("evs_by_stream", "evs_any"):
        block = re.search(rf"upstream {upstream} \{{(.*?)\}}", conf, re.S)
        assert block is not None, upstream
        assert set(re.findall(r"server (evs-[a-z]+):8000", block.group(1))) == replicas
    assert "hash $evs_stream consistent" in conf


def test_the_missing_secrets_are_refused() -> None:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTVSTREAM_")}
    result = subprocess.run(
        ["docker-compose", "-f", str(FILE), "config", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0 and "EVENTVSTREAM_" in result.stderr
