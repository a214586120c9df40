"""Run dbt commands against the warehouse as a subprocess, streaming its output to the task log."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

from journeyflow.warehouse import dbt_environment

log = logging.getLogger(__name__)
TIMESTAMPED = re.compile(r"^\d\d:\d\d:\d\d ")


class DbtFailure(RuntimeError):
    """dbt exited non-zero; the message carries its failing lines."""


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(args: list[str], project_dir: Path, warehouse_url: str) -> str:
    """Run `dbt <args>` in the project; raise DbtFailure naming what failed."""
    env = {
        **os.environ,
        **dbt_environment(warehouse_url),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
    ]
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
