"""The SQL & Insights dashboard page, driven by Streamlit's AppTest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from aiw.settings import load_settings

pytestmark = pytest.mark.unit

PAGE = Path(__file__).resolve().parents[2] / "src" / "aiw" / "dashboard" / "pages" / "2_SQL_Insights.py"


@pytest.fixture
def page(sample_ws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    monkeypatch.setenv("AIW_HOME", str(sample_ws.root))
    load_settings.cache_clear()
    app = AppTest.from_file(str(PAGE), default_timeout=120)
    app.run()
    yield app
    load_settings.cache_clear()


def test_sql_editor_runs_the_query_and_shows_rows(page: AppTest) -> None:
    assert not page.exception
    page.text_area(key="sql_text").input("SELECT line_of_business, count(*) AS n FROM claims GROUP BY 1 ORDER BY 1")
    page.button(key="run_sql").click().run()
    assert not page.exception and not page.error
    frame = page.dataframe[0].value
    assert list(frame.columns) == ["line_of_business", "n"] and len(frame) == 5
    assert any("5 rows" in c.value for c in page.caption)


def test_sql_editor_shows_refusals(page: AppTest) -> None:
    page.text_area(key="sql_text").input("DROP TABLE claims")
    page.button(key="run_sql").click().run()
    assert page.error and "write statements are not allowed" in page.error[0].value


def test_forecast_chart_with_interval_band(page: AppTest) -> None:
    form_button = next(b for b in page.button if b.label == "Forecast")
    form_button.click().run()
    assert not page.exception and not page.error
    charts = page.get("vega_lite_chart") or page.get("arrow_vega_lite_chart")
    assert charts, "no chart was drawn"
    spec = charts[0].proto.spec
    assert '"area"' in spec and '"line"' in spec and "upper" in spec  # the band and the lines
    table = page.dataframe[-1].value
    assert list(table.columns) == ["series", "ts", "forecast", "lower", "upper", "model"] and len(table) == 30
