"""What BI reads, on a pipeline-built warehouse: contracts, run ids, no PII, BI role, report."""

from __future__ import annotations

import re

import psycopg
import pytest
import yaml

from journeyflow import pipeline, report
from journeyflow.warehouse import connection_parts
from tests.conftest import cloned_database
from tests.integration.conftest import ROOT, TEST_BI_PASSWORD, point_pipeline_at
from tests.integration.headless_chromium import visit_page

pytestmark = pytest.mark.integration

REPORTING_YML = sorted((ROOT / "dbt_project" / "models" / "reporting").glob("_reporting__*.yml"))
POSTGRES_TYPES = {"timestamptz": "timestamp with time zone"}
ARTIFACTS = ROOT / ".artifacts"
EXPECTED_CHARTS = {
    "funnel",
    "stage_flow",
    "journey_ranking",
    "campaign_lift",
    "data_health",
    *(f"trend_{column}" for column, _, _ in report.TREND_METRICS),
}
E164 = re.compile(r"^\+\d{8,15}$")


def _declared_models() -> dict[str, list[tuple[str, str]]]:
    models = {}
    for path in REPORTING_YML:
        for model in yaml.safe_load(path.read_text()).get("models", []):
            models[model["name"]] = [(c["name"], c["data_type"]) for c in model["columns"]]
    return models


@pytest.fixture(scope="module")
def reporting_warehouse(server_url, demo_files, bi_role, built_warehouse):
    """A warehouse of its own: a copy of one DAG run (a publish), a rebuild, a second publish."""
    from journeyflow.sendgrid_sink import SendGridSink

    data_dir, _ = demo_files
    assert built_warehouse.state == "success"
    with (
        cloned_database(server_url, built_warehouse.url, "reporting") as url,
        SendGridSink() as sink,
        pytest.MonkeyPatch.context() as patch,
    ):
        point_pipeline_at(patch, url, data_dir, sink.url)
        with psycopg.connect(url) as conn:
            first_run_id = conn.execute("select max(run_id) from reporting.rpt_kpi_trends")
            first_run_id = first_run_id.fetchone()[0]
        pipeline.build_reporting("second-publish")
        pipeline.publish_reporting()
        yield url, first_run_id


@pytest.fixture()
def published(reporting_warehouse) -> str:
    return reporting_warehouse[1]


@pytest.fixture()
def db(reporting_warehouse):
    with psycopg.connect(reporting_warehouse[0], autocommit=True) as conn:
        yield conn


@pytest.fixture()
def bi(reporting_warehouse, bi_role):
    parts = connection_parts(reporting_warehouse[0])
    with psycopg.connect(
        host=parts["host"],
        port=parts["port"],
        dbname=parts["dbname"],
        user=bi_role,
        password=TEST_BI_PASSWORD,
        autocommit=True,
    ) as conn:
        yield conn


def test_every_reporting_table_matches_its_contract(published, db):
    declared = _declared_models()
    live = db.execute(
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = 'reporting' order by table_name, ordinal_position"
    ).fetchall()
    actual: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in live:
        actual.setdefault(table, []).append((column, data_type))
    assert set(actual) == set(declared)
    for table, columns in declared.items():
        expected = [(name, POSTGRES_TYPES.get(kind, kind)) for name, kind in columns]
        assert actual[table] == expected, table
        assert [name for name, _ in columns][-2:] == ["refreshed_at", "run_id"], table


def test_the_pipeline_passes_its_run_id_and_the_second_publish_replaced_every_table(
    published, db, built_warehouse
):
    assert published == built_warehouse.run_id  # the DAG passed its run id to dbt
    assert published.startswith("manual__")
    for (table,) in db.execute(
        "select table_name from information_schema.tables where table_schema = 'reporting'"
    ).fetchall():
        run_ids = db.execute(f"select distinct run_id from reporting.{table}").fetchall()
        assert run_ids in ([("second-publish",)], []), table
    assert db.execute("select count(*) from reporting.rpt_stage_flow").fetchone()[0] > 0


def test_trend_revenue_is_in_the_reporting_currency(published, db):
    trend_revenue, converted, as_paid = db.execute(
        "select (select sum(revenue) from reporting.rpt_kpi_trends)::float,"
        " (select sum(revenue) from marts.dim_customers)::float,"
        " (select sum(amount) from marts.fct_touchpoints"
        "  where touchpoint_type = 'order_completed')::float"
    ).fetchone()
    assert trend_revenue == pytest.approx(converted, rel=1e-4)
    assert as_paid != pytest.approx(converted, rel=1e-2)  # demo orders are also in EUR and GBP


def test_weekly_trends_count_each_active_and_ordering_customer_once(published, db):
    expected = db.execute(
        "select cast(date_trunc('week', timezone('UTC', occurred_at)) as date) as week,"
        " count(distinct profile_id),"
        " count(distinct profile_id) filter (where touchpoint_type = 'order_completed'),"
        " count(*) filter (where touchpoint_type = 'order_completed')"
        " from marts.fct_touchpoints group by 1 order by 1"
    ).fetchall()
    trends = db.execute(
        "select week_start, active_customers, ordering_customers, orders"
        " from reporting.rpt_kpi_trends order by 1"
    ).fetchall()
    assert trends == expected
    assert any(ordering for _, _, ordering, _ in trends)


def test_reporting_holds_no_direct_identifiers(published, db):
    columns = db.execute(
        "select table_name, column_name from information_schema.columns"
        " where table_schema = 'reporting' and data_type = 'text'"
    ).fetchall()
    assert not [c for _, c in columns if re.search(r"email|phone|first_name|last_name|address", c)]
    for table, column in columns:
        values = [v for (v,) in db.execute(f"select distinct {column} from reporting.{table}")]
        assert not [v for v in values if v and ("@" in v or E164.match(v))], (table, column)


def test_bi_role_reads_every_reporting_table_after_the_second_publish(bi, db):
    tables = [
        name
        for (name,) in db.execute(
            "select table_name from information_schema.tables where table_schema = 'reporting'"
        )
    ]
    assert len(tables) == 8
    for table in tables:
        bi.execute(f"select * from reporting.{table} limit 1").fetchall()


def test_bi_role_reads_nothing_outside_reporting_and_no_identifier_column(bi, db):
    relations = db.execute(
        "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where c.relkind in ('r', 'v', 'm', 'p') and n.nspname not in"
        " ('pg_catalog', 'information_schema', 'reporting') and n.nspname not like 'pg_toast%'"
    ).fetchall()
    schemas = {schema for schema, _ in relations}
    assert {"raw", "staging", "intermediate", "marts", "activation", "dq"} <= schemas
    for schema, name in relations:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            bi.execute(f'select 1 from "{schema}"."{name}" limit 1')
    readable_identifiers = db.execute(
        "select table_schema, table_name, column_name from information_schema.columns"
        " where column_name ~ '(email|phone)'"
        " and table_schema not in ('pg_catalog', 'information_schema')"
        " and has_column_privilege(%s, format('%%I.%%I', table_schema, table_name),"
        " column_name, 'select')",
        (bi.info.user,),
    ).fetchall()
    assert readable_identifiers == []


def test_readme_queries_for_analysts_run_as_the_bi_role(bi):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## For analysts", 1)[1].split("\n## ", 1)[0]
    queries = re.findall(r"```sql\n(.*?)```", section, re.S)
    assert len(queries) == 3
    for query in queries:
        assert bi.execute(query).fetchall(), query


def test_journey_success_ranking_ranks_every_configured_journey_lowest_score_first(bi):
    project = yaml.safe_load((ROOT / "dbt_project" / "dbt_project.yml").read_text())
    configured = {journey["name"] for journey in project["vars"]["journeys"]}
    rows = bi.execute(
        "select week_start, journey, score_rank, journeys_scored, success_score, score_version"
        " from reporting.rpt_journey_success_ranking where success_score is not null"
        " order by week_start, score_rank"
    ).fetchall()
    assert {journey for _, journey, *_ in rows} == configured
    weeks: dict = {}
    for week, _, rank, scored, score, version in rows:
        weeks.setdefault(week, []).append((rank, score))
        assert version == "v1" and 0 <= score <= 100
        assert scored == sum(1 for row in rows if row[0] == week)
    for week, ranked in weeks.items():
        assert [rank for rank, _ in ranked] == list(range(1, len(ranked) + 1)), week
        assert [score for _, score in ranked] == sorted(score for _, score in ranked), week


def test_readme_journey_query_runs_as_the_bi_role(bi):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Journeys, funnels and the success score", 1)[1].split("\n## ", 1)[0]
    (query,) = re.findall(r"```sql\n(.*?)```", section, re.S)
    bi.execute(query).fetchall()


def test_report_renders_in_headless_chromium_with_data_in_every_chart(
    published, bi, built_warehouse, tmp_path
):
    written = built_warehouse.report  # JOURNEY_REPORT_DIR of the run that published first
    assert published in written.read_text()  # by the DAG's render_journey_report task
    page = report.write_report(bi, tmp_path / report.REPORT_FILE)  # as BI: reporting only
    html = page.read_text()
    assert "second-publish" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched
    visit = visit_page(page.as_uri(), ARTIFACTS / "journey_report.png")
    assert visit.errors == []
    assert visit.ready
    assert visit.requests == [page.as_uri()]
    assert {chart["key"] for chart in visit.charts} == EXPECTED_CHARTS
    for chart in visit.charts:
        assert chart["empty"] == "false" and chart["marks"] > 0, chart
        assert chart["counted"] == chart["marks"], chart
    assert (ARTIFACTS / "journey_report.png").stat().st_size > 50_000


def test_the_browser_check_catches_a_broken_page(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        '<figure class="chart" data-chart="funnel" data-empty="true"></figure>'
        "<script>console.error('no data'); missingFunction();</script>"
    )
    visit = visit_page(page.as_uri(), tmp_path / "broken.png")
    assert visit.errors[0] == "console.error: no data"
    assert "missingFunction is not defined" in visit.errors[1]
    assert visit.charts == [{"key": "funnel", "empty": "true", "marks": None, "counted": 0}]
