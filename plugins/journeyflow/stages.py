"""Journey stage names, read from the stage rules of the dbt project (their one definition)."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import yaml

from journeyflow.settings import PROJECT_ROOT

LAPSED = "lapsed"


class StageRulesError(ValueError):
    """The dbt project has no readable var journey_stage_rules."""


def _project_file() -> Path:
    directory = os.environ.get("JOURNEY_DBT_PROJECT_DIR")
    return (Path(directory) if directory else PROJECT_ROOT / "dbt_project") / "dbt_project.yml"


@cache
def _stages_in(project_file: Path) -> tuple[str, ...]:
    rules = (yaml.safe_load(project_file.read_text()) or {}).get("vars", {})
    stages = (rules.get("journey_stage_rules") or {}).get("stages")
    if not isinstance(stages, list) or not all(
        isinstance(stage, dict) and isinstance(stage.get("name"), str) for stage in stages
    ):
        raise StageRulesError(
            f"{project_file}: vars.journey_stage_rules.stages must be a list of named stages"
        )
    return (*(stage["name"] for stage in stages), LAPSED)


def journey_stages(project_file: Path | None = None) -> tuple[str, ...]:
    """The funnel stages in order, then lapsed, as the dbt models build them."""
    return _stages_in((project_file or _project_file()).resolve())


def funnel_stages(project_file: Path | None = None) -> tuple[str, ...]:
    """The funnel stages in order, without lapsed."""
    return journey_stages(project_file)[:-1]
