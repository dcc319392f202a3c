"""The deployment artifacts refer only to things that exist.

No container engine runs here, so ``deploy/compose.yaml``, the ``Dockerfile`` and
``.dockerignore`` are checked statically: the compose file against the Compose
Specification's JSON schema (shipped by the ``dclint`` npm package, installed by
``make docs-assets``; never copied into the repo), and every image, command,
health check, ``XYNERGY_*`` variable and mounted file against the code and the
tree. Each check is a function returning its problems; the ``TestChecksCatch``
class breaks a copy of the real file once per check and shows the check notices.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import typer.main
import yaml
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from xynergy.cli import app as cli_app
from xynergy.platform.admin_app import PLATFORM_SLUG
from xynergy.reference.settings import discover_settings, setting_docs
from xynergy.server import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
README = DEPLOY / "README.md"
COMPOSE_SCHEMA = ROOT / "node_modules" / "dclint" / "schemas" / "compose.schema.json"

# What `docker compose` would read from deploy/.env on a real machine.
OPERATOR_ENV = {"POSTGRES_PASSWORD": "0123456789abcdef" * 3}
# Images maintained by their upstream projects (Docker official images, or the
# projects' own namespaces), each pinned to a version tag.
OFFICIAL_IMAGES = frozenset(
    {"postgres", "redis", "nginx", "python", "node", "prom/prometheus", "grafana/grafana"}
)
PINNED_TAG = re.compile(r"^v?\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?$")
# The one image this repository builds, and the Dockerfile it is built from.
OWN_IMAGE = re.compile(r"^xynergy:(\$\{XYNERGY_IMAGE_TAG:-)?\d+\.\d+\.\d+\}?$")
SECRETS_DIR = "./secrets/"
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# --- loading ----------------------------------------------------------------------------


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable interpolation: ``${V}``, ``${V:-d}``, ``${V-d}``, ``${V:?e}``, ``$$``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        value = env.get(name)
        unset = value is None or (value == "" and operator is not None and ":" in operator)
        if operator in {"?", ":?"} and unset:
            raise ValueError(f"{name} is required: {argument}")
        if operator in {"-", ":-"} and unset:
            return argument or ""
        return value or ""

    return _VARIABLE.sub(substitute, text)


def load_compose(env: Mapping[str, str] = OPERATOR_ENV) -> dict[str, Any]:
    """The compose file as ``docker compose config`` would see it with ``env``."""
    loaded = yaml.safe_load(interpolate(COMPOSE_FILE.read_text(), env))
    assert isinstance(loaded, dict)
    return loaded


def compose_schema() -> dict[str, Any]:
    if not COMPOSE_SCHEMA.exists():
        pytest.fail(
            f"{COMPOSE_SCHEMA.relative_to(ROOT)} is missing: run `make docs-assets` (npm ci "
            "installs the Compose Specification schema with the dclint package)",
            pytrace=False,
        )
    schema: dict[str, Any] = json.loads(COMPOSE_SCHEMA.read_text())
    return schema


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped.removesuffix("\\").strip() + " "
        if stripped.endswith("\\"):
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def _services(compose: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield from compose.get("services", {}).items()


def _is_built_here(service: Mapping[str, Any]) -> bool:
    return "build" in service


def _command(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    return {str(key): str(value) for key, value in environment.items()}


# --- the checks: each returns what is wrong, [] when nothing is -------------------------


def schema_problems(compose: Mapping[str, Any]) -> list[str]:
    validator = jsonschema_rs.validator_for(compose_schema())
    return [
        f"{list(error.instance_path)}: {error.message}" for error in validator.iter_errors(compose)
    ]


def image_problems(compose: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, service in _services(compose):
        if _is_built_here(service):
            build = service["build"]
            dockerfile = DEPLOY / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
            if dockerfile.resolve() != DOCKERFILE:
                problems.append(f"{name}: builds {dockerfile}, not the repository's Dockerfile")
            if not OWN_IMAGE.match(str(service.get("image", ""))):
                problems.append(f"{name}: built image named {service.get('image')!r}")
            continue
        repository, _, tag = str(service.get("image", "")).rpartition(":")
        if repository not in OFFICIAL_IMAGES:
            problems.append(f"{name}: image {service.get('image')!r} is not an official one")
        elif not PINNED_TAG.match(tag):
            problems.append(f"{name}: image {service.get('image')!r} has no pinned version tag")
    return problems


def _cli_problems(where: str, argv: list[str]) -> list[str]:
    group = typer.main.get_command(cli_app)
    commands = getattr(group, "commands", {})
    if not argv or argv[0] not in commands:
        return [f"{where}: {argv} is not a xynergy command ({', '.join(sorted(commands))})"]
    options = {opt for param in commands[argv[0]].params for opt in param.opts}
    problems = [
        f"{where}: xynergy {argv[0]} has no option {arg}"
        for arg in argv[1:]
        if arg.startswith("-") and arg.split("=")[0] not in options
    ]
    if "--service" in argv:
        slug = argv[argv.index("--service") + 1]
        if slug not in {PLATFORM_SLUG, *SERVICES}:
            problems.append(f"{where}: no service {slug!r}")
    return problems


def command_problems(compose: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, service in _services(compose):
        if _is_built_here(service):
            problems += _cli_problems(name, _command(service))
    return problems


def ordering_problems(compose: Mapping[str, Any]) -> list[str]:
    """A one-shot `migrate` job that every replica waits for."""
    services = dict(_services(compose))
    jobs = [n for n, s in services.items() if _is_built_here(s) and _command(s)[:1] == ["migrate"]]
    if len(jobs) != 1:
        return [f"expected one migration job, found {jobs}"]
    problems = []
    if str(services[jobs[0]].get("restart", "no")) != "no":
        problems.append(f"{jobs[0]}: a migration job must run once (restart: no)")
    for name, service in services.items():
        if _is_built_here(service) and _command(service)[:1] == ["serve"]:
            condition = service.get("depends_on", {}).get(jobs[0], {}).get("condition")
            if condition != "service_completed_successfully":
                problems.append(f"{name}: does not wait for {jobs[0]} to complete")
    return problems


def healthcheck_problems(compose: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, service in _services(compose):
        if str(service.get("restart", "no")) == "no":
            continue  # a one-shot job: its exit status is its health
        check = service.get("healthcheck") or {}
        if check.get("disable") or not check.get("test") or check["test"][:1] == ["NONE"]:
            problems.append(f"{name}: no health check")
    return problems


def known_setting_names() -> tuple[set[str], set[str]]:
    """Every settings variable, and those that may come from a file (``<NAME>_FILE``)."""
    names, secrets = set(), set()
    for model in discover_settings():
        for doc in setting_docs(model):
            names.add(doc.env_name)
            if doc.is_secret:
                secrets.add(doc.env_name)
    return names, secrets


def environment_problems(compose: Mapping[str, Any], dockerfile_env: set[str]) -> list[str]:
    names, secrets = known_setting_names()
    file_forms = {name + "_FILE" for name in secrets}
    used = {(n, var) for n, s in _services(compose) for var in _environment(s)}
    used |= {("Dockerfile", var) for var in dockerfile_env}
    return [
        f"{where}: {variable} is not a setting of any settings model"
        for where, variable in sorted(used)
        if variable.startswith("XYNERGY_") and variable not in names | file_forms
    ]


def settings_value_problems(
    compose: Mapping[str, Any], secret_file: Path, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Every replica's environment is accepted by every settings model (production checks too)."""
    problems = []
    models: list[type[BaseSettings]] = discover_settings()
    for name, service in _services(compose):
        if not _is_built_here(service):
            continue
        for variable in [v for v in os.environ if v.startswith("XYNERGY_")]:
            monkeypatch.delenv(variable)
        for variable, value in _environment(service).items():
            # The mounted secrets are files in the test's temp dir here.
            monkeypatch.setenv(variable, str(secret_file) if variable.endswith("_FILE") else value)
        for model in models:
            try:
                model()
            except (ValidationError, ValueError) as exc:
                problems.append(f"{name}: {model.__name__}: {exc}")
    return problems


def mount_problems(compose: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, service in _services(compose):
        for volume in service.get("volumes", []):
            source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")) and not (DEPLOY / source).exists():
                problems.append(f"{name}: mounts {source}, which does not exist under deploy/")
    readme = README.read_text() if README.exists() else ""
    for secret, definition in compose.get("secrets", {}).items():
        source = str(definition.get("file", ""))
        if not source.startswith(SECRETS_DIR):
            problems.append(f"secret {secret}: {source!r} is outside {SECRETS_DIR}")
        if "secrets/" + Path(source).name not in readme:
            problems.append(f"secret {secret}: deploy/README.md does not say how to create it")
    return problems


def _container_paths(service: Mapping[str, Any]) -> set[str]:
    """Where a service sees its bind mounts and secrets inside the container."""
    paths = {
        volume["target"] if isinstance(volume, dict) else volume.split(":")[1]
        for volume in service.get("volumes", [])
    }
    return paths | {"/run/secrets/" + str(secret) for secret in service.get("secrets", [])}


def observability_problems(compose: Mapping[str, Any]) -> list[str]:
    """Files Prometheus' and Grafana's configurations read are mounted where they look."""
    services = dict(_services(compose))
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    wanted = {("prometheus", path) for path in prometheus.get("rule_files", [])}
    wanted |= {
        ("prometheus", job["authorization"]["credentials_file"])
        for job in prometheus.get("scrape_configs", [])
        if "credentials_file" in job.get("authorization", {})
    }
    for provider_file in (DEPLOY / "grafana" / "provisioning" / "dashboards").glob("*.y*ml"):
        for provider in yaml.safe_load(provider_file.read_text()).get("providers", []):
            wanted.add(("grafana", provider["options"]["path"]))
    return [
        f"{service}: its configuration reads {path}, which is not mounted"
        for service, path in sorted(wanted)
        if path not in _container_paths(services.get(service, {}))
    ]


def proxy_problems(compose: Mapping[str, Any]) -> list[str]:
    """nginx stays in the foreground (a daemonised nginx ends its container at once)."""
    proxy = compose["services"]["proxy"]
    config = (DEPLOY / "proxy" / "nginx.compose.conf").read_text()
    argv = [*proxy.get("entrypoint", []), *_command(proxy)]
    in_config = re.search(r"^\s*daemon\s+off;", config, re.MULTILINE)
    if not in_config and "daemon off;" not in argv:
        return [f"proxy: {argv} runs nginx as a daemon (no `daemon off;`)"]
    if in_config and "daemon off;" in argv:
        return ["proxy: `daemon off;` both in the configuration and on the command line"]
    return []


def dockerfile_problems(text: str) -> list[str]:
    instructions = dockerfile_instructions(text)
    stages = [args for keyword, args in instructions if keyword == "FROM"]
    problems = [] if len(stages) >= 2 else ["not a multi-stage build"]
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [args for keyword, args in final if keyword == "USER"]
    if not users or users[-1].split(":")[0] in {"root", "0"}:
        problems.append("the runtime stage does not switch to a non-root USER")
    checks = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    if not checks or "/healthz" not in checks[-1]:
        problems.append("no HEALTHCHECK on /healthz")
    entry = " ".join(args for keyword, args in final if keyword in {"ENTRYPOINT", "CMD"})
    for keyword, args in final:
        # Exec form: a shell form would make /bin/sh PID 1, and SIGTERM would not
        # reach the server (no drain).
        if keyword in {"ENTRYPOINT", "CMD"} and not _is_json_list(args):
            problems.append(f"{keyword} {args[:40]}: not in exec (JSON) form")
    if "exec xynergy" not in entry or '["serve"]' not in entry:
        problems.append("the entry point is not `xynergy serve`")
    if not any(k == "RUN" and "pip install" in a and "/wheels" in a for k, a in final):
        problems.append("the runtime stage does not install the wheel")
    for keyword, args in instructions:
        if keyword in {"ENV", "ARG"} and re.search(r"(SECRET|PASSWORD|API_KEY)\w*=", args):
            problems.append(f"{keyword} {args[:60]}: a secret baked into the image")
    for keyword, args in instructions:
        if keyword == "ARG" and "_IMAGE=" in args:
            repository, _, tag = args.split("=", 1)[1].rpartition(":")
            if repository not in OFFICIAL_IMAGES or not PINNED_TAG.match(tag.split("-")[0]):
                problems.append(f"base image {args} is not an official, pinned one")
    return problems


def _is_json_list(text: str) -> bool:
    try:
        return isinstance(json.loads(text), list)
    except json.JSONDecodeError:
        return False


def dockerfile_env_names(text: str) -> set[str]:
    return {
        match
        for keyword, args in dockerfile_instructions(text)
        if keyword == "ENV"
        for match in re.findall(r"\b(XYNERGY_[A-Z0-9_]+)=", args)
    }


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: the last matching pattern wins; a directory's match covers it."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        if any(fnmatch.fnmatch(prefix, glob) for prefix in prefixes):
            ignored = not negate
    return ignored


def dockerignore_problems(dockerfile: str, dockerignore: str) -> list[str]:
    patterns = [
        line.strip() for line in dockerignore.splitlines() if line.strip() and line[0] != "#"
    ]
    problems = []
    for keyword, args in dockerfile_instructions(dockerfile):
        if keyword != "COPY" or "--from=" in args:
            continue
        for source in args.split()[:-1]:
            if not _ignored(source.rstrip("/"), patterns):
                continue
            problems.append(f"COPY {source}: excluded by .dockerignore")
    for secret_path in (".env", "deploy/.env", "deploy/secrets/internal_token_secret", ".venv/x"):
        if not _ignored(secret_path, patterns):
            problems.append(f"{secret_path} would enter the build context")
    return problems


def package_data_problems() -> list[str]:
    """Every non-Python file of the package is shipped by the wheel's package-data globs."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["xynergy"]
    package = ROOT / "src" / "xynergy"
    problems = []
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package).as_posix()
        if path.is_dir() or path.suffix in {".py", ".pyc"} or "__pycache__" in relative:
            continue
        if path.name == ".copied":  # the Makefile's stamp
            continue
        if not any(fnmatch.fnmatch(relative, glob) for glob in globs):
            problems.append(f"src/xynergy/{relative} is not in the wheel (package-data)")
    return problems


# --- the real files pass ----------------------------------------------------------------


class TestComposeFile:
    def test_matches_the_compose_specification(self) -> None:
        assert schema_problems(load_compose()) == []

    def test_needs_the_database_password_from_the_operator(self) -> None:
        with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
            load_compose({})

    def test_images_are_this_dockerfile_or_pinned_official_ones(self) -> None:
        assert image_problems(load_compose()) == []

    def test_commands_are_xynergy_commands(self) -> None:
        assert command_problems(load_compose()) == []

    def test_replicas_wait_for_one_migration_job(self) -> None:
        assert ordering_problems(load_compose()) == []

    def test_long_running_services_have_health_checks(self) -> None:
        assert healthcheck_problems(load_compose()) == []

    def test_environment_names_are_settings(self) -> None:
        assert (
            environment_problems(load_compose(), dockerfile_env_names(DOCKERFILE.read_text())) == []
        )

    def test_environment_values_are_accepted_by_the_settings(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        secret = tmp_path / "secret"
        secret.write_text("s" * 48 + "\n")
        assert settings_value_problems(load_compose(), secret, monkeypatch) == []

    def test_mounted_files_exist_and_secrets_are_documented(self) -> None:
        assert mount_problems(load_compose()) == []

    def test_observability_configuration_finds_its_files(self) -> None:
        assert observability_problems(load_compose()) == []

    def test_proxy_runs_in_the_foreground(self) -> None:
        assert proxy_problems(load_compose()) == []

    def test_scales_replicas_from_the_environment(self) -> None:
        compose = load_compose(OPERATOR_ENV | {"XYNERGY_REPLICAS": "5"})
        assert compose["services"]["app"]["deploy"]["replicas"] == 5
        assert schema_problems(compose) == []


class TestImage:
    def test_dockerfile_is_multi_stage_non_root_with_a_health_check(self) -> None:
        assert dockerfile_problems(DOCKERFILE.read_text()) == []

    def test_build_context_holds_what_is_copied_and_no_secrets(self) -> None:
        assert dockerignore_problems(DOCKERFILE.read_text(), DOCKERIGNORE.read_text()) == []

    def test_wheel_ships_every_template_asset_and_migration(self) -> None:
        assert package_data_problems() == []

    def test_dockerfile_assets_stage_uses_the_makefile_rule(self) -> None:
        # The same files as `make install`: the Makefile's rule, not a copy of its list.
        runs = [a for k, a in dockerfile_instructions(DOCKERFILE.read_text()) if k == "RUN"]
        assert "make docs-assets" in runs


# --- each check notices when its subject breaks -----------------------------------------


def _broken(mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    compose = copy.deepcopy(load_compose())
    mutate(compose)
    return compose


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(compose: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = compose
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(compose: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = compose
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


class TestChecksCatch:
    @pytest.mark.parametrize(
        "mutate",
        [
            _set("services.migrate.depends_on.postgres.condition", "service_ready"),
            _set("services.app.deploy.replicas", [3]),
            _set("services.app.unknown_key", 1),
            _set("services.redis.healthcheck.interval", 5),
        ],
        ids=["bad-condition", "bad-replicas", "unknown-key", "interval-not-duration"],
    )
    def test_schema(self, mutate: Callable[[dict[str, Any]], None]) -> None:
        assert schema_problems(_broken(mutate))

    @pytest.mark.parametrize(
        "mutate",
        [
            _set("services.redis.image", "redis:latest"),
            _set("services.redis.image", "redis"),
            _set("services.postgres.image", "someone/postgres:15.10"),
            _set("services.app.build.dockerfile", "Dockerfile.dev"),
        ],
        ids=["latest", "untagged", "unofficial", "other-dockerfile"],
    )
    def test_images(self, mutate: Callable[[dict[str, Any]], None]) -> None:
        assert image_problems(_broken(mutate))

    @pytest.mark.parametrize(
        "command",
        [["server"], ["serve", "--workers", "4"], ["serve", "--service", "billing"], []],
        ids=["unknown-command", "unknown-option", "unknown-service", "none"],
    )
    def test_commands(self, command: list[str]) -> None:
        assert command_problems(_broken(_set("services.app.command", command)))

    def test_ordering(self) -> None:
        assert ordering_problems(_broken(_delete("services.app.depends_on.migrate")))
        assert ordering_problems(_broken(_set("services.migrate.restart", "always")))
        assert ordering_problems(_broken(_set("services.migrate.command", ["info"])))

    def test_health_checks(self) -> None:
        assert healthcheck_problems(_broken(_delete("services.redis.healthcheck")))
        assert healthcheck_problems(_broken(_set("services.app.healthcheck", {"disable": True})))

    def test_environment_names(self) -> None:
        typo = _set("services.app.environment.XYNERGY_DATABSE_URL", "x")
        assert environment_problems(_broken(typo), set())
        assert environment_problems(load_compose(), {"XYNERGY_NOT_A_SETTING"})
        not_secret = _set("services.app.environment.XYNERGY_DATABASE_URL_FILE", "/run/x")
        assert environment_problems(_broken(not_secret), set())

    def test_environment_values(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        secret = tmp_path / "secret"
        secret.write_text("s" * 48)
        bad = _set("services.app.environment.XYNERGY_TRUSTED_PROXIES", "not-an-address")
        assert settings_value_problems(_broken(bad), secret, monkeypatch)
        short = tmp_path / "short"
        short.write_text("short")
        assert settings_value_problems(load_compose(), short, monkeypatch)

    def test_mounts(self) -> None:
        missing = _set("services.proxy.volumes", ["./proxy/missing.conf:/etc/nginx/nginx.conf:ro"])
        assert mount_problems(_broken(missing))
        outside = _set("secrets.internal_token_secret", {"file": "../.env"})
        assert mount_problems(_broken(outside))
        undocumented = _set("secrets.undocumented", {"file": "./secrets/undocumented"})
        assert mount_problems(_broken(undocumented))

    def test_proxy(self) -> None:
        daemon = _set("services.proxy.entrypoint", ["nginx", "-c", "/etc/nginx/nginx.conf"])
        assert proxy_problems(_broken(daemon))

    def test_observability(self) -> None:
        assert observability_problems(_broken(_delete("services.prometheus.secrets")))
        no_rules = _set("services.prometheus.volumes", ["./prometheus/prometheus.yml:/x.yml:ro"])
        assert observability_problems(_broken(no_rules))
        assert observability_problems(_broken(_set("services.grafana.volumes", [])))

    @pytest.mark.parametrize(
        ("old", "new"),
        [
            ("USER 10001:10001", "USER root"),
            ("USER 10001:10001", ""),
            ("/healthz", "/"),
            ('CMD ["serve"]', 'CMD ["info"]'),
            ("ENTRYPOINT [", "ENTRYPOINT sh ["),
            ("AS build", "AS build\nENV XYNERGY_INTERNAL_TOKEN_SECRET=abc"),
            ("node:20.18.1-bookworm", "node:latest"),
        ],
        ids=[
            "root",
            "no-user",
            "no-healthz",
            "not-serve",
            "shell-form",
            "baked-secret",
            "unpinned-base",
        ],
    )
    def test_dockerfile(self, old: str, new: str) -> None:
        text = DOCKERFILE.read_text()
        assert old in text
        assert dockerfile_problems(text.replace(old, new))

    def test_dockerfile_single_stage(self) -> None:
        text = DOCKERFILE.read_text()
        runtime_stage = text[text.rindex("\nFROM ") :].split("\n", 2)[2]
        assert dockerfile_problems("FROM python:3.11.11-slim-bookworm\n" + runtime_stage)

    def test_dockerignore(self) -> None:
        dockerfile, ignore = DOCKERFILE.read_text(), DOCKERIGNORE.read_text()
        assert dockerignore_problems(dockerfile, ignore.replace("!src/\n", ""))
        assert dockerignore_problems(dockerfile, ignore.replace("*\n", "", 1))

    def test_package_data(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = tomllib.loads

        def without_templates(text: str) -> dict[str, Any]:
            config = original(text)
            data = config["tool"]["setuptools"]["package-data"]["xynergy"]
            data.remove("platform/templates/*.html")
            return config

        monkeypatch.setattr(tomllib, "loads", without_templates)
        assert package_data_problems()
