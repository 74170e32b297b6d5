"""The deployment files (Dockerfile, compose files, .dockerignore), checked without an engine.

The image is built and run for real by scripts/docker_smoke.sh (in CI, through .ci/run). These
tests check what needs no engine, fast:

* the compose files (docker-compose.yml; docker-compose.override.yml, the GPU reservation
  Compose adds by itself; docker-compose.cpu.yml, the CPU variant): their structure (services,
  GPU reservations, named volumes, health checks, the API-key variable, the `remote` profile)
  and that every value we hand the container is a setting `evs` accepts for the profile it
  selects; then, where available, Compose itself (`docker compose config -q`, or Debian's
  docker-compose 1.29) and the official Compose JSON schema;
* the Dockerfile, through a small instruction parser: non-root user, health check, port,
  entrypoint, profiles, the torch pin of the base image, the files it copies;
* that the image's Python dependencies resolve from the package index (`pip install --dry-run`),
  with torch at the pinned version and every third-party module the package imports at load time.

Optional parts skip with the reason (no compose plugin, no schema package, no network).
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from eventvstream.config import NON_SETTING_ENV, ServerSettings, Settings, load_settings
from eventvstream.config.loading import _setting_env_names

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
OVERRIDE_FILE = ROOT / "docker-compose.override.yml"  # read by Compose when no -f is given
CPU_FILE = ROOT / "docker-compose.cpu.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

#: What a user exports before `docker compose up` (the only variable without a default).
KEYS_VAR = "EVENTVSTREAM_API_KEYS"
USER_ENV = {KEYS_VAR: '["test-key-1", "test-key-2"]'}
LLAMA = "meta-llama/Meta-Llama-3-8B-Instruct"


# --- Compose variable interpolation (the subset of the Compose spec we use) -------------------

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    pass


def _substitute(text: str, env: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        unset_or_empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return arg if unset_or_empty else value
        if op in (":?", "?"):
            if unset_or_empty:
                raise InterpolationError(f"{name}: {arg}")
            return value
        if op in (":+", "+"):
            return "" if unset_or_empty else arg
        return value or ""

    return _VAR.sub(one, text)


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Substitute ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` like Compose (values only)."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, str):
        return _substitute(node, env)
    return node


def variables(node: Any) -> set[str]:
    """Every variable the file reads."""
    if isinstance(node, dict):
        return set().union(*(variables(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(variables(v) for v in node)) if node else set()
    if isinstance(node, str):
        return {m["braced"] or m["bare"] for m in _VAR.finditer(node) if not m["escaped"]}
    return set()


def duration_s(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def merge(base: Any, override: Any) -> Any:
    """Compose's merge for what our files use: mappings merge key by key, anything else
    (command, a scalar) is replaced by the override."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    """What a plain `docker compose` reads: docker-compose.yml + docker-compose.override.yml."""
    return merge(load_yaml(COMPOSE_FILE), load_yaml(OVERRIDE_FILE))


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    return interpolate(raw, USER_ENV)


@pytest.fixture(scope="module")
def cpu_raw() -> dict[str, Any]:
    """The CPU variant: -f docker-compose.yml -f docker-compose.cpu.yml (no override file)."""
    return merge(load_yaml(COMPOSE_FILE), load_yaml(CPU_FILE))


def gpu_reservation(service: dict[str, Any]) -> list[dict[str, Any]]:
    return service["deploy"]["resources"]["reservations"]["devices"]


def healthcheck_url(test: list[str] | str) -> str:
    text = test if isinstance(test, str) else " ".join(test)
    found = re.findall(r"https?://[^'\" ]+", text)
    assert len(found) == 1, f"expected one URL in the health check: {text}"
    return found[0]


def known_env_names() -> set[str]:
    return _setting_env_names(Settings) | NON_SETTING_ENV


# --- (a) docker-compose.yml ---------------------------------------------------------------------


def test_compose_services_and_volumes(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"evs", "vllm"}
    assert set(compose["volumes"]) == {"evs-data", "evs-models"}


def test_evs_service(compose: dict[str, Any]) -> None:
    evs = compose["services"]["evs"]
    assert evs["build"] == "." or evs["build"].get("context") == "."
    assert "profiles" not in evs, "evs must start with a plain `docker compose up`"
    assert [p for p in evs["ports"] if p.endswith(":8000:8000")], evs["ports"]
    assert evs["restart"] == "unless-stopped"
    assert evs.get("init") is True, "an init reaps the decoder's child processes"

    [gpu] = gpu_reservation(evs)
    assert gpu["driver"] == "nvidia" and gpu["count"] == 1 and gpu["capabilities"] == ["gpu"]

    assert set(evs["volumes"]) == {"evs-data:/data", "evs-models:/models"}
    for mount in evs["volumes"]:  # named volumes, not bind mounts
        assert mount.split(":")[0] in compose["volumes"]

    check = evs["healthcheck"]
    assert urlsplit(healthcheck_url(check["test"])).path == "/healthz"
    assert check["test"][0] == "CMD" and "curl" not in check["test"]

    # SIGTERM drain must fit in the grace period, or Docker kills the server mid-drain.
    drain = ServerSettings().drain_timeout_s
    assert duration_s(evs["stop_grace_period"]) >= max(30.0, drain + 5)


def test_gpu_reservation_lives_in_the_override_only() -> None:
    """The base file is device-neutral (so the CPU variant can leave the GPU out: Compose
    cannot delete a key in an override); the override file holds the GPU and nothing else."""
    base = load_yaml(COMPOSE_FILE)["services"]["evs"]
    assert "deploy" not in base
    override = load_yaml(OVERRIDE_FILE)
    assert set(override["services"]) == {"evs"}
    assert set(override["services"]["evs"]) == {"deploy"}


@pytest.mark.parametrize("profile", [None, "default", "tiny"])
def test_cpu_variant(
    cpu_raw: dict[str, Any], profile: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_env = dict(USER_ENV, **({"EVENTVSTREAM_PROFILE": profile} if profile else {}))
    compose = interpolate(cpu_raw, user_env)
    evs = compose["services"]["evs"]
    assert "deploy" not in evs, "the CPU variant must not reserve a GPU"
    command = evs["command"]
    chosen = command[command.index("--config") + 1]
    assert chosen == (profile or "default")
    assert command[command.index("--host") + 1] == "0.0.0.0"
    for key in [k for k in os.environ if k.startswith("EVS_")]:
        monkeypatch.delenv(key)
    for key, value in container_env(compose).items():
        monkeypatch.setenv(key, value)
    settings = load_settings(chosen)
    assert settings.encoder.backend != "open_clip" or settings.encoder.pretrained in (None, "none")
    assert str(settings.memory.data_dir) == "/data"


def test_evs_depends_on_nothing_mandatory(compose: dict[str, Any]) -> None:
    depends = compose["services"]["evs"].get("depends_on", {})
    if isinstance(depends, dict):
        required = [name for name, spec in depends.items() if (spec or {}).get("required", True)]
    else:
        required = list(depends)
    assert required == [], "evs must come up without the optional vllm service"


def test_api_keys_come_from_the_environment(raw: dict[str, Any]) -> None:
    env = raw["services"]["evs"]["environment"]
    value = env["EVS_SERVER__API_KEYS"]
    assert value.startswith("${" + KEYS_VAR + ":?"), "the keys must be required, not defaulted"
    with pytest.raises(InterpolationError, match=KEYS_VAR):
        interpolate(raw, {})
    assert interpolate(env, USER_ENV)["EVS_SERVER__API_KEYS"] == USER_ENV[KEYS_VAR]


def test_compose_variables_are_not_evs_settings(raw: dict[str, Any]) -> None:
    """`evs` refuses unknown EVS_* variables; a compose-level EVS_API_KEYS exported in a shell
    would stop every `evs` command run from it. Compose variables use another prefix."""
    names = variables(raw) | variables(load_yaml(CPU_FILE))
    assert KEYS_VAR in names
    assert not [n for n in names if n.startswith("EVS_")]


def container_env(compose: dict[str, Any]) -> dict[str, str]:
    """The EVS_* environment the evs container starts with: the image's ENV, then compose's."""
    env = {k: v for k, v in dockerfile_env().items() if k.startswith("EVS_")}
    env.update(
        {
            k: str(v)
            for k, v in compose["services"]["evs"]["environment"].items()
            if k.startswith("EVS_")
        }
    )
    return env


def test_container_env_names_are_settings(compose: dict[str, Any]) -> None:
    unknown = sorted(set(container_env(compose)) - known_env_names())
    assert unknown == [], f"evs would refuse to start: unknown settings {unknown}"


@pytest.mark.parametrize("profile", [None, "gpu", "remote"])
def test_selected_profile_loads_with_container_env(
    raw: dict[str, Any], profile: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_env = dict(USER_ENV, **({"EVENTVSTREAM_PROFILE": profile} if profile else {}))
    compose = interpolate(raw, user_env)
    command = compose["services"]["evs"]["command"]
    chosen = command[command.index("--config") + 1]
    assert chosen == (profile or "gpu")
    assert (ROOT / "configs" / f"{chosen}.yaml").is_file()
    assert command[command.index("--port") + 1] == "8000"
    assert command[command.index("--host") + 1] == "0.0.0.0"

    for key in [k for k in os.environ if k.startswith("EVS_")]:
        monkeypatch.delenv(key)
    for key, value in container_env(compose).items():
        monkeypatch.setenv(key, value)
    settings = load_settings(chosen)
    assert settings.server.api_keys == json.loads(USER_ENV[KEYS_VAR])
    assert str(settings.memory.data_dir) == "/data"
    assert str(settings.language.cache_dir).startswith("/models/")
    if chosen == "remote":
        # The remote profile talks to the compose service, on the port vLLM listens on.
        url = urlsplit(settings.language.base_url or "")
        assert (url.hostname, url.port or 80) == ("vllm", 8000)
        assert "8000" in [str(p) for p in compose["services"]["vllm"]["expose"]]
        vllm_command = compose["services"]["vllm"]["command"]
        served = vllm_command[vllm_command.index("--model") + 1]
        assert settings.language.model == served, "vLLM rejects requests for another model name"


def test_vllm_service(compose: dict[str, Any]) -> None:
    vllm = compose["services"]["vllm"]
    assert vllm["profiles"] == ["remote"]
    assert vllm["image"].split(":")[0] == "vllm/vllm-openai"
    command = vllm["command"]
    assert command[command.index("--model") + 1] == LLAMA
    [gpu] = gpu_reservation(vllm)
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert "evs-models:/models" in vllm["volumes"]
    assert {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} & set(vllm["environment"])
    assert urlsplit(healthcheck_url(vllm["healthcheck"]["test"])).path == "/health"
    assert "ports" not in vllm, "vLLM stays on the compose network"


def compose_command() -> tuple[list[str] | None, str]:
    """`docker compose` (the v2 plugin), else a standalone `docker-compose` (v2, or Debian
    bookworm's 1.29, which implements the Compose Specification too); or why neither."""
    reasons = []
    for argv in (["docker", "compose"], ["docker-compose"]):
        try:
            out = subprocess.run([*argv, "version"], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired) as exc:
            reasons.append(f"{' '.join(argv)}: {exc}")
            continue
        text = (out.stdout + out.stderr).strip()
        if out.returncode == 0 and re.search(r"\bv?(2\.\d+|1\.(29|[3-9]\d)\.)", text):
            return argv, text
        reasons.append(f"{' '.join(argv)}: {text.splitlines()[0] if text else out.returncode}")
    return None, "no Compose here (" + "; ".join(reasons) + ")"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("files", "profiles"),
    [([], []), ([], ["remote"]), ([COMPOSE_FILE, CPU_FILE], [])],
    ids=["gpu", "remote", "cpu"],
)
def test_docker_compose_config(files: list[Path], profiles: list[str]) -> None:
    """Compose itself (client side, no engine needed) accepts the files and refuses to run
    without the keys. No -f: Compose reads docker-compose.yml + docker-compose.override.yml."""
    compose, why = compose_command()
    if compose is None:
        pytest.skip(why)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTVSTREAM_", "COMPOSE_"))}
    env.update(USER_ENV)
    if profiles:
        env["EVENTVSTREAM_PROFILE"] = profiles[0]
    args = [*compose]
    for path in files:
        args += ["-f", str(path)]
    for profile in profiles:
        args += ["--profile", profile]
    out = subprocess.run([*args, "config"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    resolved = yaml.safe_load(out.stdout)["services"]
    assert ("deploy" in resolved["evs"]) == (CPU_FILE not in files), "GPU only without the CPU file"
    out = subprocess.run(
        [*args, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    del env[KEYS_VAR]
    out = subprocess.run(
        [*args, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and KEYS_VAR in out.stderr


def compose_schema() -> tuple[dict[str, Any] | None, str]:
    """The official Compose JSON schema, where a package on this machine ships it.

    docker-compose 1.29.2 (PyPI) carries the Compose Specification's schema as
    ``compose/config/compose_spec.json``; `pip install --no-deps docker-compose==1.29.2`
    adds it without its dependencies. Its date (2021) predates some newer keys, which this
    compose file therefore does not use.
    """
    if importlib.util.find_spec("jsonschema") is None:
        return None, "jsonschema is not installed (pip install jsonschema)"
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        return None, (
            "no package ships the Compose JSON schema here "
            "(pip install --no-deps docker-compose==1.29.2 provides compose_spec.json)"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "config" / "compose_spec.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8")), str(path)
    return None, "the installed `compose` package has no config/compose_spec.json"


@pytest.mark.parametrize("profile", ["gpu", "remote", "cpu"])
def test_compose_json_schema(raw: dict[str, Any], cpu_raw: dict[str, Any], profile: str) -> None:
    schema, where = compose_schema()
    if schema is None:
        pytest.skip(where)
    import jsonschema

    source = cpu_raw if profile == "cpu" else raw
    env = dict(USER_ENV) if profile == "cpu" else dict(USER_ENV, EVENTVSTREAM_PROFILE=profile)
    document = interpolate(source, env)
    validator_class = jsonschema.validators.validator_for(schema, jsonschema.Draft201909Validator)
    errors = sorted(validator_class(schema).iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


# --- (b) Dockerfile -----------------------------------------------------------------------------


def parse_dockerfile(text: str) -> list[tuple[int, str, str]]:
    """(stage index, INSTRUCTION, arguments) for each instruction: continuation lines joined,
    comments and blank lines dropped (as Docker does, also inside a continued instruction)."""
    instructions: list[tuple[int, str, str]] = []
    stage = -1
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, args = full.partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        instructions.append((stage, word, args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


INSTRUCTIONS = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
FINAL_STAGE = max(stage for stage, _, _ in INSTRUCTIONS)


def final(word: str) -> list[str]:
    return [args for stage, w, args in INSTRUCTIONS if w == word and stage == FINAL_STAGE]


def everywhere(word: str) -> list[str]:
    return [args for _, w, args in INSTRUCTIONS if w == word]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in final("ENV"):
        for token in shlex.split(args):
            key, sep, value = token.partition("=")
            assert sep, f"use ENV KEY=VALUE: {args}"
            env[key] = value
    return env


def build_args() -> dict[str, str]:
    """ARG defaults declared before the first FROM (they may appear in FROM lines)."""
    values = {}
    for stage, word, args in INSTRUCTIONS:
        if word == "ARG" and stage == -1:
            key, _, value = args.partition("=")
            values[key] = value
    return values


def test_dockerfile_runs_as_non_root_before_entrypoint() -> None:
    sequence = [(w, a) for s, w, a in INSTRUCTIONS if s == FINAL_STAGE]
    users = [i for i, (w, _) in enumerate(sequence) if w == "USER"]
    [entrypoint] = [i for i, (w, _) in enumerate(sequence) if w == "ENTRYPOINT"]
    assert users and users[-1] < entrypoint, "USER must be set before ENTRYPOINT"
    user = sequence[users[-1]][1].split(":")[0]
    assert user not in ("root", "0")
    if user.isdigit():
        assert int(user) == 10001
    # ... and the uid exists in the image, with that name (made in the stage the final one
    # starts from).
    assert any("useradd" in a and "--uid 10001" in a and " evs" in a for a in everywhere("RUN"))


def test_dockerfile_healthcheck_expose_entrypoint() -> None:
    [check] = final("HEALTHCHECK")
    assert "NONE" not in check.split()
    probe = check.split(" CMD ", 1)[1]
    assert probe.lstrip().startswith("["), "exec form: no shell needed"
    argv = exec_form(probe)
    assert argv[0].startswith("python") and "curl" not in probe
    url = urlsplit(healthcheck_url(argv))
    assert url.path == "/healthz"

    exposed = {port for args in final("EXPOSE") for port in args.split()}
    assert "8000" in exposed and str(url.port) in exposed

    [entrypoint] = final("ENTRYPOINT")
    assert exec_form(entrypoint) == ["evs", "serve"]
    assert PYPROJECT["project"]["scripts"]["evs"] == "eventvstream.cli:main"

    [cmd] = final("CMD")
    argv = exec_form(cmd)
    profile = argv[argv.index("--config") + 1]
    assert (ROOT / "configs" / f"{profile}.yaml").is_file()
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert argv[argv.index("--port") + 1] in exposed


def test_dockerfile_env_and_profiles() -> None:
    env = dockerfile_env()
    assert env["HF_HOME"] == "/models"
    assert env["EVS_MEMORY__DATA_DIR"] == "/data"
    assert env["EVS_LANGUAGE__CACHE_DIR"] == "/models/evs"
    unknown = sorted(k for k in env if k.startswith("EVS_") and k not in known_env_names())
    assert unknown == [], f"evs would refuse to start: unknown settings {unknown}"
    # Profiles named anywhere in the Dockerfile (e.g. the build-time smoke test) exist.
    for profile in re.findall(r"load_settings\('(\w+)'\)", DOCKERFILE.read_text()):
        assert (ROOT / "configs" / f"{profile}.yaml").is_file(), profile


def test_dockerfile_base_image_and_torch() -> None:
    """One Dockerfile for GPU and CPU: a bookworm Python base chosen by a build argument, torch
    from pip at the pyproject pin (not a second pin in the Dockerfile), its index a build
    argument, and an offline path through the wheelhouse."""
    base = build_args()["BASE_IMAGE"]
    assert base.startswith("python:3.11-") and "bookworm" in base, base
    stages = set()
    for args in everywhere("FROM"):
        image, *rest = args.split()
        assert image == "${BASE_IMAGE}" or image in stages, args
        if rest:
            stages.add(rest[-1])
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"torch==\d", text), "the torch pin lives in pyproject.toml only"
    assert "ARG TORCH_INDEX_URL" in text
    runs = " ".join(everywhere("RUN"))
    assert "tomllib" in runs and "requirements.txt" in runs
    assert "--no-index --find-links /wheels" in runs
    copies = everywhere("COPY")
    assert any(c.split()[0] == "wheelhouse/" for c in copies)
    # The dependency layer comes before the source, so a source edit rebuilds in seconds.
    order = [a.split()[0] for a in copies if "--from=" not in a]
    assert order.index("pyproject.toml") < order.index("src")


def setup_sh_no_deps() -> list[str]:
    """The weight packages scripts/setup.sh installs without their (unused) dependencies."""
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    return re.findall(r'--no-deps "([^"]+)"', setup)


def test_dockerfile_installs_like_setup_sh() -> None:
    no_deps = setup_sh_no_deps()
    assert len(no_deps) >= 2
    runs = " ".join(everywhere("RUN"))
    for requirement in no_deps:
        assert f'"{requirement}"' in runs and "--no-deps" in runs, requirement


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_copies_what_exists_and_is_not_ignored() -> None:
    patterns = dockerignore_patterns()
    for needed in (".venv", ".git", ".bench", ".demo", ".llama-server", "test-artifacts"):
        assert needed in patterns, needed
    sources = []
    for args in everywhere("COPY"):
        if "--from=" in args:
            continue
        *srcs, _dest = args.split()
        sources += srcs
    assert {"pyproject.toml", "README.md", "src", "configs", "wheelhouse/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source not in patterns and source.split("/")[0] not in patterns, source


# --- (c) the image's Python dependencies resolve ------------------------------------------------


def index_host() -> tuple[str, int]:
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        url = out.stdout.strip() if out.returncode == 0 else ""
    parts = urlsplit(url or "https://pypi.org/simple")
    return parts.hostname or "pypi.org", parts.port or (443 if parts.scheme == "https" else 80)


def top_level_imports() -> set[str]:
    """Third-party modules the package imports when a module loads (not lazily, in a function,
    nor behind try/except): the image must have every one, or `evs serve` dies at start."""
    found: set[str] = set()
    for path in (ROOT / "src" / "eventvstream").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found |= {name.split(".")[0] for name in names}
    return {m for m in found if m not in sys.stdlib_module_names and m != "eventvstream"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.slow
def test_image_dependencies_resolve(tmp_path: Path) -> None:
    host, port = index_host()
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as exc:
        pytest.skip(f"no network to the package index {host}:{port} ({exc})")
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    command += ["--quiet", "--report", str(report), str(ROOT)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip could not resolve within 240 s from {host} (slow network?)")
    assert out.returncode == 0, out.stderr[-3000:]
    resolved = {
        normalise(item["metadata"]["name"]): item
        for item in json.loads(report.read_text())["install"]
    }

    ours = resolved["eventvstream"]
    assert ours["is_direct"] and ours["metadata"]["version"] == PYPROJECT["project"]["version"]
    # The pin holds (a local build label such as +cpu or +cu126 is the same release).
    assert resolved["torch"]["metadata"]["version"].split("+")[0] == "2.13.0"
    assert resolved["torchvision"]["metadata"]["version"].split("+")[0] == "0.28.0"

    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(top_level_imports()):
        dists = {normalise(d) for d in distributions.get(module, [])}
        if dists and not dists & set(resolved):
            missing[module] = sorted(dists)
    assert not missing, (
        f"imported at load time but not a dependency in pyproject.toml: {missing}; "
        "the image would fail with ModuleNotFoundError"
    )

    # The weight packages the Dockerfile installs with --no-deps exist at those versions.
    extra = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    extra += ["--no-deps", "--quiet", *setup_sh_no_deps()]
    out = subprocess.run(extra, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
