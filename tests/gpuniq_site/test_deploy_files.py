"""The Dockerfile and compose.yaml in the repository start what exists: every service command is a
console script of the installed package (gpuniq-web, gpuniq-manage with a real management
command) or Celery on this app with its real queues; the stack has every process docs/deploy.md
describes. No Docker engine runs here, so the files are checked, not built."""

import re
import shlex
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = {"migrate", "web", "worker", "periodic", "beat"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _scripts() -> dict[str, str]:
    return {
        ep.name: ep.value
        for ep in distribution("gpuniq-gateway").entry_points
        if ep.group == "console_scripts"
    }


def _commands(service: dict) -> list[list[str]]:
    """The program invocations of a service's command (`sh -c "a && b"` is two)."""
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in argv[2].split("&&")]
    return [argv]


def _check(argv: list[str]) -> None:
    from django.core.management import get_commands

    from gpuniq_site.celery import app

    program = argv[0]
    if program == "celery":
        assert argv[1:3] == ["-A", "gpuniq_site"], argv
        assert argv[3] in {"worker", "beat"}, argv
        if "-Q" in argv:
            queues = {q.name for q in app.conf.task_queues}
            assert set(argv[argv.index("-Q") + 1].split(",")) <= queues, argv
        return
    scripts = _scripts()
    assert program in scripts, f"{program} is not a console script of the package ({sorted(scripts)})"
    module, _, func = scripts[program].partition(":")
    assert callable(getattr(__import__(module, fromlist=[func]), func))
    if program == "gpuniq-manage":
        assert argv[1] in get_commands(), f"no management command {argv[1]!r}"


def test_every_compose_command_exists_in_the_installed_package(compose):
    services = compose["services"]
    assert APP_SERVICES | {"db", "redis"} <= set(services)
    for name in APP_SERVICES:
        for argv in _commands(services[name]):
            _check(argv)
    assert ["gpuniq-manage", "migrate", "--noinput"] in _commands(services["migrate"])


def test_the_stack_runs_one_beat_and_a_worker_for_each_queue(compose):
    from gpuniq_site.celery import JOBS, PERIODIC, SCHEDULE, app

    argvs = {name: _commands(s)[0] for name, s in compose["services"].items() if name in APP_SERVICES}
    beats = [n for n, argv in argvs.items() if argv[:4] == ["celery", "-A", "gpuniq_site", "beat"]]
    consumed = {argv[argv.index("-Q") + 1]: n for n, argv in argvs.items() if "-Q" in argv}
    assert len(beats) == 1 and set(consumed) == {JOBS, PERIODIC}
    assert consumed[JOBS] != consumed[PERIODIC]  # reapers never wait behind jobs
    for task, _ in SCHEDULE.values():
        assert app.amqp.router.route({}, task)["queue"].name == PERIODIC
    assert (
        argvs["web"] == ["gpuniq-web"] and compose["services"]["web"]["environment"]["WEB_CONCURRENCY"] == "2"
    )


def test_web_gets_longer_to_stop_than_its_drain_period(compose):
    web = compose["services"]["web"]
    drain = float(web["environment"]["GPUNIQ_DRAIN_SECONDS"])
    grace = int(web["stop_grace_period"].rstrip("s"))
    assert grace > drain + 10  # docker's SIGKILL must not cut the settling of cut streams


def test_every_variable_compose_sets_is_one_the_gateway_reads(compose):
    documented = (ROOT / "README.md").read_text() + (ROOT / "docs" / "deploy.md").read_text()
    for name in APP_SERVICES:
        for variable in compose["services"][name]["environment"]:
            assert variable in documented or variable.startswith("UPSTREAM_"), variable


def test_the_image_is_a_non_editable_install_run_by_a_non_root_user(dockerfile):
    final = dockerfile[max(i for i, (op, _) in enumerate(dockerfile) if op == "FROM") :]
    installs = [args for op, args in dockerfile if op == "RUN" and "pip install" in args]
    assert installs and all(" -e " not in f" {a} " and "[dev]" not in a for a in installs)
    assert any(re.search(r"pip install \.(\s|$)", a) for a in installs)
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1] not in {"root", "0"}
    user_at = max(i for i, (op, _) in enumerate(final) if op == "USER")
    assert any("collectstatic" in args for op, args in final[:user_at] if op == "RUN")  # at build time
    for op, args in dockerfile:
        if op == "COPY" and not args.startswith("--from"):
            assert all((ROOT / src).exists() for src in args.split()[:-1]), args
    cmd = [args for op, args in final if op == "CMD"][-1]
    _check(yaml.safe_load(cmd))  # the exec form is a JSON list
