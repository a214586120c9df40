"""A real Airflow deployment in subprocesses: API server, scheduler, DAG processor, workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
STOP_TIMEOUT_SECONDS = 20


@dataclass
class Deployment:
    """Airflow components sharing one home and environment; stopped as process groups."""

    home: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.out"

    def run(self, *args: str, timeout: float = 300) -> str:
        """Run an `airflow` command to completion; raise with its output when it fails."""
        result = subprocess.run(
            [AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        with open(self.log_path("commands"), "a") as log:
            log.write(f"$ airflow {' '.join(args)}\n{result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self, name: str, *args: str) -> None:
        """Start a long-running component in its own process group, output to <name>.out."""
        with open(self.log_path(name), "w") as out:
            self.processes[name] = subprocess.Popen(
                [AIRFLOW, *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def assert_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = self.log_path(name).read_text()[-3000:]
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")

    def stop(self) -> None:
        """SIGTERM every component's process group, SIGKILL what is still alive afterwards."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def output(self) -> str:
        """Everything the components and commands printed."""
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.home.glob("*.out"))
        )


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass
