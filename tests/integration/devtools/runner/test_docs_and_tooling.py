"""The docs' runner, Core Tools, contract-suite and bench commands run as written; the local settings, deploy and
debug files hold.

Each command test first finds its exact command in the docs (``tests/docs_support.py``: by its section's heading,
in whichever page holds it), so that the docs and the test cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.azurite import Azurite, free_port, port_open
from devtools.runner.cli import parser as runner_parser
from devtools.runner.config import ensure_local_settings
from shared.stores.clients import StorageClients
from tests import docs_support
from tests.conftest import app_functions

ROOT = Path(__file__).resolve().parents[4]


def docs_section(heading: str) -> str:
    """The section under ``heading`` in whichever page holds it, to the next heading of any level."""
    return docs_support.section(heading, nested=False).text


def bash_lines(section: str) -> list[str]:
    """The commands of the section's ```bash blocks, comments and blank lines dropped."""
    return docs_support.commands(section)


def start(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 60) -> str:
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"{marker!r} not printed:\n{''.join(seen)}")


def stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    return out


def test_runner_help_as_written() -> None:
    (command,) = [c for c in bash_lines(docs_section("## The local runner")) if c.endswith("--help")]
    done = subprocess.run(shlex.split(command), cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "POST /admin/functions/<name>" in done.stdout


@pytest.mark.azurite
def test_runner_functions_command_as_written(azurite: Azurite, clients: StorageClients) -> None:
    (command,) = [c for c in bash_lines(docs_section("## The local runner")) if "--functions" in c]
    words = shlex.split(command)
    port = free_port()
    words[words.index("--port") + 1] = str(port)  # beside a `make run` on 7071
    env = {**os.environ, "AzureWebJobsStorage": azurite.connection_string}  # wins over local.settings.json
    runner = start(words, env)
    try:
        output = read_until(runner, "Host started")
        assert "\twebhook: [" in output
        assert "\ton_dialog_created_v1: queueTrigger" in output
    finally:
        stop(runner)


def test_the_contract_suite_against_tt02_as_written_skips_without_credentials_and_exits_0() -> None:
    """Without the TT02 settings, ``make contract-tt02`` runs the suite's TT02 half, each test skipped with the
    settings that are missing, and nothing against the simulator (that half runs in ``make test``)."""
    section = docs_section("## The contract suite against TT02")
    (command,) = [c for c in bash_lines(section) if c.startswith("make ")]
    assert command == "make contract-tt02"
    # The exports before it name what the suite reads: the settings its skip reason names below, and the option.
    exports = [c for c in bash_lines(section) if c.startswith("export ")]
    exported = {name for line in exports for name in re.findall(r"\b([A-Z][A-Z0-9_]*)=", line)}
    assert exported == {
        "MASKINPORTEN_CLIENT_ID", "MASKINPORTEN_KID", "MASKINPORTEN_KEY_FILE", "CONTRACT_RESOURCE", "CONTRACT_DIALOG_ID"
    }, exported  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MASKINPORTEN_", "CONTRACT_", "MAKE"))}
    done = subprocess.run(
        shlex.split(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert re.search(r"=+ \d+ skipped, \d+ deselected in ", summary), summary
    reasons = set(re.findall(r"^SKIPPED \[\d+\] \S+: (.*)$", done.stdout, flags=re.MULTILINE))
    assert reasons == {
        "TT02: no credentials: MASKINPORTEN_CLIENT_ID, MASKINPORTEN_KID, CONTRACT_RESOURCE, MASKINPORTEN_KEY_FILE "
        "or MASKINPORTEN_KEY not set (docs/cli.md: 'The contract suite against TT02')"
    }


def test_an_unknown_function_name_lists_the_valid_ones() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devtools.runner", "--port", "0", "--functions", "webhook", "on_dialog_created"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "no function named on_dialog_created." in done.stdout
    assert "\n  on_dialog_created_v1\n" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_the_runner_says_which_port_is_taken() -> None:
    port = free_port()
    with __import__("socket").create_server(("127.0.0.1", port)):
        done = subprocess.run(
            [sys.executable, "-m", "devtools.runner", "--port", str(port), "--functions", "purge_idempotency"],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
            env={**os.environ, "AzureWebJobsStorage": "UseDevelopmentStorage=true"},
        )  # fmt: skip
    assert done.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in done.stdout
    assert "--port" in done.stdout


def test_bench_help_as_written() -> None:
    section = docs_section("## Benchmarks")
    (command,) = [c for c in bash_lines(section) if "--help" in c]
    assert "make bench ARGS=--quick" in bash_lines(section)
    done = subprocess.run(shlex.split(command), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout
    assert "usage: python -m devtools.bench" in done.stdout  # the benchmark's help, not make's


@pytest.mark.azurite
def test_core_tools_commands_as_written_up_to_func_start(azurite: Azurite, clients: StorageClients) -> None:
    """Everything but `func start` itself (Core Tools is not installed here), in the docs' order."""
    commands = bash_lines(docs_section("## With Azure Functions Core Tools"))
    assert commands[0] == "make install"  # before the Azurite it installs is started
    assert commands[-1] == "source .venv/bin/activate && func start"
    assert not any("npx" in c for c in commands)

    done = subprocess.run(["make", "-s", "install"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert (ROOT / "local.settings.json").exists()

    (line,) = [c for c in commands if "azurite" in c]
    words = shlex.split(line.removesuffix("&").strip())
    emulator = Azurite.on_free_ports()
    ports = [emulator.blob_port, emulator.queue_port, emulator.table_port]
    # The docs' line on free ports (the session's Azurite and a `make run` hold others), in a scratch folder.
    words += ["--blobPort", str(ports[0]), "--queuePort", str(ports[1]), "--tablePort", str(ports[2])]
    scratch = Path(__import__("tempfile").mkdtemp(prefix="azurite-docs-"))
    emulator_process: subprocess.Popen[bytes] = subprocess.Popen(
        [str(ROOT / words[0]), *words[1:]], cwd=scratch, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not all(port_open(p) for p in ports):
            assert time.monotonic() < deadline, "Azurite did not start"
            time.sleep(0.2)
        (provision,) = [c for c in commands if "--provision" in c]
        connection = emulator.connection_string
        done = subprocess.run(
            shlex.split(provision), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
            env={**os.environ, "AzureWebJobsStorage": connection},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        from azure.storage.queue import QueueServiceClient

        names = {q.name for q in QueueServiceClient.from_connection_string(connection).list_queues()}
        assert "dialogporten-dialog-created-v1" in names
    finally:
        # Azurite's own stop: SIGTERM, then SIGKILL if it lingers on idle keep-alive connections.
        emulator.process = emulator_process
        emulator.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_admin_curl_in_the_docs_names_a_timer_of_the_app() -> None:
    (curl,) = re.findall(r"^curl .*/admin/functions/.*$", docs_section("## The local runner"), flags=re.MULTILINE)
    name = re.search(r"/admin/functions/(\w+)", curl).group(1)  # type: ignore[union-attr]
    triggers = {f.get_function_name(): f.get_trigger().get_binding_name() for f in app_functions()}
    assert triggers.get(name) == "timerTrigger", sorted(triggers)
    assert json.loads(shlex.split(curl)[-1]) == {"input": ""}


# --- local.settings.json: not committed, written from the example ---------------------------------------------


def test_local_settings_is_not_committed_and_the_example_is() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "local.settings.json", "local.settings.example.json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert tracked == ["local.settings.example.json"]
    ignored = subprocess.run(["git", "check-ignore", "-q", "local.settings.json"], cwd=ROOT, check=False)
    assert ignored.returncode == 0
    example = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))
    assert example["Values"]["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert "AccountKey" not in json.dumps(example)  # the example never holds a real secret


def test_make_writes_local_settings_from_the_example_once(tmp_path: Path) -> None:
    shutil.copy(ROOT / "Makefile", tmp_path)
    shutil.copy(ROOT / "local.settings.example.json", tmp_path)
    target = tmp_path / "local.settings.json"
    subprocess.run(["make", "-s", "local.settings.json"], cwd=tmp_path, check=True, capture_output=True)
    assert target.read_text() == (tmp_path / "local.settings.example.json").read_text()

    target.write_text('{"Values": {"MINE": "kept"}}')
    time.sleep(0.01)
    (tmp_path / "local.settings.example.json").touch()  # a newer example never overwrites your own settings
    subprocess.run(["make", "-s", "local.settings.json"], cwd=tmp_path, check=True, capture_output=True)
    assert target.read_text() == '{"Values": {"MINE": "kept"}}'


def test_make_run_writes_local_settings_when_absent(tmp_path: Path) -> None:
    (tmp_path / "local.settings.example.json").write_text('{"Values": {"A": "1"}}')
    assert ensure_local_settings(tmp_path) is True
    assert (tmp_path / "local.settings.json").read_text() == '{"Values": {"A": "1"}}'
    (tmp_path / "local.settings.json").write_text('{"Values": {"A": "mine"}}')
    assert ensure_local_settings(tmp_path) is False
    assert (tmp_path / "local.settings.json").read_text() == '{"Values": {"A": "mine"}}'
    assert ensure_local_settings(tmp_path / "elsewhere") is False  # no example, nothing written


# --- .funcignore: what Core Tools and azd leave out of the deploy package --------------------------------------


def packaged(funcignore: str, paths: list[str], where: Path) -> list[str]:
    """The paths a .funcignore lets into the package (gitignore rules, as Core Tools reads it), via git itself."""
    repo = where / "pkg"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / ".gitignore").write_text(funcignore)
    for path in paths:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text("")
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=repo, capture_output=True, text=True, check=False
    ).stdout.split()
    return [p for p in paths if p not in ignored]


DEV_ONLY = [
    ".vscode/launch.json",
    ".vscode/tasks.json",
    "local.settings.json",
    "local.settings.example.json",
    ".keys/maskinporten-tt02.jwk.json",  # dpctl auth keygen's folder
    "maskinporten-key.pem",  # a private key, wherever it lies
]
DEPLOYED = ["function_app.py", "host.json", "requirements.txt", "shared/events/catalog.py"]


def test_funcignore_keeps_dev_files_out_of_the_package(tmp_path: Path) -> None:
    funcignore = (ROOT / ".funcignore").read_text(encoding="utf-8")
    assert packaged(funcignore, DEV_ONLY + DEPLOYED, tmp_path) == DEPLOYED


def test_the_funcignore_check_fails_on_a_funcignore_that_lets_the_example_in(tmp_path: Path) -> None:
    broken = (ROOT / ".funcignore").read_text(encoding="utf-8").replace("local.settings.example.json\n", "")
    assert "local.settings.example.json" in packaged(broken, DEV_ONLY + DEPLOYED, tmp_path)


# --- VS Code: the launch configuration runs the runner after its pre-launch task -------------------------------


def test_vscode_launch_runs_the_runner_after_storage_is_ready() -> None:
    launch = json.loads((ROOT / ".vscode" / "launch.json").read_text(encoding="utf-8"))
    tasks = json.loads((ROOT / ".vscode" / "tasks.json").read_text(encoding="utf-8"))
    (config,) = launch["configurations"]
    assert config["type"] == "debugpy"
    assert config["module"] == "devtools.runner"
    runner_parser().parse_args(config["args"])  # arguments the runner accepts
    assert Path(config["python"].replace("${workspaceFolder}", str(ROOT))) == ROOT / ".venv" / "bin" / "python"
    labels = {t["label"]: t for t in tasks["tasks"]}
    assert config["preLaunchTask"] in labels
    assert config["postDebugTask"] in labels
    assert tasks["inputs"][0]["args"] == config["preLaunchTask"]  # the post-debug task stops the pre-launch one

    task = labels[config["preLaunchTask"]]
    ends = re.compile(task["problemMatcher"]["background"]["endsPattern"])
    begins = re.compile(task["problemMatcher"]["background"]["beginsPattern"])
    process = start(["bash", "-c", task["command"]])
    try:
        output = read_until(process, "Storage ready", timeout=120)
        assert begins.search(output), output
        assert ends.search(output), output
        assert all(port_open(p) for p in (10000, 10001, 10002))
    finally:
        rest = stop(process)
    assert "Traceback" not in output + rest
    if "Azurite started" in output:
        assert not port_open(10001)  # the Azurite the task started stops with it
