"""Run dbt commands against the warehouse as a subprocess, streaming its output to the task log."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from journeyflow.warehouse import analytic_session_options, dbt_environment

log = logging.getLogger(__name__)
TIMESTAMPED = re.compile(r"^\d\d:\d\d:\d\d ")


class DbtFailure(RuntimeError):
    """dbt exited non-zero; the message carries its failing lines."""


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_values_environment(run_values: dict[str, str]) -> dict[str, str]:
    """The environment variables the project's `pipeline_value` macro reads (JOURNEY_<NAME>)."""
    return {f"JOURNEY_{name.upper()}": value for name, value in run_values.items()}


def _command_vars(args: list[str]) -> str:
    return args[args.index("--vars") + 1] if "--vars" in args[:-1] else ""


def target_path(project_dir: Path, warehouse_url: str, args: list[str]) -> Path:
    """A target folder per warehouse and --vars, so dbt's partial parsing survives runs.

    dbt re-parses the whole project (tens of seconds) whenever the --vars or the connection
    differ from its previous parse: values that change every run (as-of time, run id) are
    passed as environment variables instead, read only at execution, and each warehouse and
    kind of build (marts, reporting) keeps its own parse state.
    """
    parts = dbt_environment(warehouse_url)
    identity = json.dumps(
        [
            parts.get("JOURNEY_DB_HOST"),
            parts.get("JOURNEY_DB_PORT"),
            parts.get("JOURNEY_DB_NAME"),
            _command_vars(args),
        ]
    )
    return project_dir / "target" / hashlib.sha256(identity.encode()).hexdigest()[:16]


def run_dbt(
    args: list[str],
    project_dir: Path,
    warehouse_url: str,
    run_values: dict[str, str] | None = None,
) -> str:
    """Run `dbt <args>` in the project; raise DbtFailure naming what failed.

    run_values (e.g. as_of, run_id) reach the models through `pipeline_value(name)`.
    """
    env = {
        **os.environ,
        **dbt_environment(warehouse_url),
        **run_values_environment(run_values or {}),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
        "PGOPTIONS": analytic_session_options(),
    }
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
    ]
    if "--target-path" not in args and "DBT_TARGET_PATH" not in os.environ:
        command += ["--target-path", str(target_path(project_dir, warehouse_url, args))]
    log.info("running %s", " ".join(command[: 1 + len(args)]))
    process = subprocess.Popen(
        command,
        cwd=project_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip())
        log.info("dbt | %s", line.rstrip())
    if process.wait() != 0:
        raise DbtFailure(f"dbt {' '.join(args)} failed:\n" + "\n".join(failing_lines(lines)[-30:]))
    return "\n".join(lines)


def failing_lines(lines: list[str]) -> list[str]:
    """Lines naming a failure, each with the untimestamped lines that continue its message."""
    failing: list[str] = []
    in_failure = False
    for line in lines:
        if "FAIL" in line or "ERROR" in line or "Error" in line:
            failing.append(line)
            in_failure = True
        elif in_failure and line.strip() and not TIMESTAMPED.match(line):
            failing.append(line)
        else:
            in_failure = False
    return failing
