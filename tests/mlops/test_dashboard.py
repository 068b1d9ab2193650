"""The Models dashboard page: models, versions, the approval queue (approving there) and a card."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from mlops_helpers import People, register

pytestmark = pytest.mark.unit

PAGE = Path(__file__).resolve().parents[2] / "src/aiw/dashboard/pages/3_Models.py"


def test_page_lists_models_and_lets_an_approver_approve(
    mlops_ws: Any,
    mlops_home: Path,
    trained: Any,
    people: People,
    champion: str,
    api_keys: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streamlit.testing.v1 import AppTest

    from aiw.mlops.registry import PromotionWorkflow
    from aiw.settings import load_settings

    name = "aaa-dash-model"  # sorts first, so the page selects it by default
    register(mlops_ws, trained, name, people.ds)
    request = PromotionWorkflow(mlops_ws).request(name, 1, "staging", people.ds, reason="for the dashboard")
    for var in [v for v in os.environ if v.startswith("AIW_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AIW_HOME", str(mlops_home))
    load_settings.cache_clear()
    try:
        at = AppTest.from_file(str(PAGE), default_timeout=120).run()
        assert not at.exception, at.exception
        shown = " ".join(str(df.value.to_dict()) for df in at.dataframe)
        assert champion in shown and name in shown and "for the dashboard" in shown and "@champion = v1" in shown
        assert any("Model card: aaa-dash-model v1" in m.value for m in at.markdown)
        # A wrong key is refused with a clear message; the request stays pending.
        at.text_input(key="models_key").set_value("aiw_nope_bad")
        at.button[0].click().run()
        assert any("Unknown API key" in e.value for e in at.error)
        assert PromotionWorkflow(mlops_ws).get(request.id).status == "pending"
        at.text_input(key="models_key").set_value(api_keys["approver"])
        at.text_input(key="models_comment").set_value("approved from the dashboard")
        at.button[0].click().run()
        assert any(f"Request #{request.id} is now approved" in s.value for s in at.success), [e.value for e in at.error]
    finally:
        load_settings.cache_clear()
    done = PromotionWorkflow(mlops_ws).get(request.id)
    assert done.status == "approved" and done.decisions[0].approver == "key-approver"
    assert done.decisions[0].comment == "approved from the dashboard"
