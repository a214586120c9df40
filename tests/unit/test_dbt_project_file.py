"""dbt_project.yml holds no key twice: YAML would silently keep only the last one."""

from pathlib import Path

import yaml

PROJECT_FILE = Path(__file__).resolve().parents[2] / "dbt_project" / "dbt_project.yml"


class _StrictLoader(yaml.SafeLoader):
    """A loader that refuses a mapping with a repeated key."""


def _mapping_without_repeats(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    keys = [loader.construct_object(key, deep=deep) for key, _ in node.value]
    repeated = sorted({str(key) for key in keys if keys.count(key) > 1})
    if repeated:
        raise yaml.constructor.ConstructorError(
            None, None, f"repeated key(s) {repeated}", node.start_mark
        )
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats
)


def test_dbt_project_file_has_no_repeated_keys():
    yaml.load(PROJECT_FILE.read_text(), Loader=_StrictLoader)


def test_both_run_end_hooks_are_kept():
    hooks = yaml.safe_load(PROJECT_FILE.read_text())["on-run-end"]
    assert any("record_passed_data_tests" in hook for hook in hooks)
    assert any("profile_rebuild_confirm" in hook for hook in hooks)
