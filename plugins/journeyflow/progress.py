"""Condense Airflow's `dags test` log into a few progress lines a person can follow."""

from __future__ import annotations

import re
from collections.abc import Callable

LOG_LINE = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<message>.*?) \[(?P<logger>[\w.]+)\]")
TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\w+) map_index=(?P<index>-?\d+)")
RUN_END = re.compile(r"DagRun Finished: .*?state=(?P<state>\w+)")
DBT_SUMMARY = re.compile(r"dbt \| .*(Done\. PASS=|Finished running|FAIL |ERROR )")
LOUD_LEVELS = {"error", "critical", "exception"}
TRACE_LINES_SHOWN = 40


class ProgressPrinter:
    """Feed it raw log lines; it prints task starts, pipeline messages, problems and the outcome."""

    def __init__(self, emit: Callable[[str], None] = print) -> None:
        self.emit = emit
        self.trace_budget = 0
        self.state: str | None = None

    def _structured(self, level: str, message: str, logger: str) -> None:
        if started := TASK_START.search(message):
            index = int(started["index"])
            suffix = f"[{index}]" if index >= 0 else ""
            self.emit(f"  > {started['task']}{suffix}")
        elif finished := RUN_END.search(message):
            self.state = finished["state"]
            self.emit(f"  = run finished: {self.state}")
        elif level in LOUD_LEVELS or (level == "warning" and logger.startswith("journeyflow.")):
            self.emit(f"    ! {message}")
            self.trace_budget = TRACE_LINES_SHOWN
        elif logger == "journeyflow.dbt_runner":
            if DBT_SUMMARY.search(message):
                self.emit(f"    {message.split('|', 1)[1].strip()}")
        elif logger.startswith("journeyflow."):
            self.emit(f"    {message}")

    def feed(self, line: str) -> None:
        line = line.rstrip("\n")
        match = LOG_LINE.match(line)
        if match:
            self._structured(match["level"].lower(), match["message"], match["logger"])
        elif self.trace_budget > 0 and line.strip():
            self.trace_budget -= 1
            self.emit(f"    {line}")
