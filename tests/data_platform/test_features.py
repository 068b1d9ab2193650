"""The Feast feature store over the marts: apply, materialize, point-in-time joins, online lookups."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from aiw.errors import InvalidInputError, NotFoundError

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def fs(built_ws, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A copy of the built workspace with the feature store applied and materialized (SQLite)."""
    import shutil

    from aiw.features.store import FeatureStoreService
    from aiw.settings import build_settings
    from aiw.workspace import Workspace

    built_ws.db.dispose()
    target = tmp_path_factory.mktemp("features") / "ws"
    shutil.copytree(built_ws.root, target)
    ws = Workspace(build_settings(home=target)).ensure()
    service = FeatureStoreService(ws, ws.settings.features)
    service.applied = service.apply(actor="tests")  # type: ignore[attr-defined]
    service.materialized = service.materialize(actor="tests")  # type: ignore[attr-defined]
    yield service
    ws.db.dispose()


def _mart(service, sql: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    from aiw.data._warehouse import warehouse

    with warehouse(service.workspace) as conn:
        return conn.execute(sql).df()


def test_apply_registers_the_definitions(fs) -> None:  # type: ignore[no-untyped-def]
    applied = fs.applied
    assert applied.entities == ["claim", "customer"]
    assert set(applied.feature_views) == {"claim_features", "claim_labels", "customer_features"}
    assert "amount_to_limit" in applied.feature_views["claim_features"]
    assert "is_fraud" not in applied.feature_views["claim_features"]  # the label lives apart
    assert applied.feature_services == ["claims_fraud"]
    assert applied.exported["claim_features.parquet"] == 6000
    assert (fs.repo / "data" / "claim_features.parquet").is_file() and (fs.repo / "online.db").is_file()
    assert "claim_labels:gender" in fs.feature_refs()
    again = fs.apply(actor="tests", export=False)  # idempotent
    assert again.feature_views == applied.feature_views
    actions = [r.action for r in fs.workspace.audit.records(limit=10)]
    assert "features.apply" in actions and "features.materialize" in actions


def test_claim_features_never_come_from_the_future(fs) -> None:  # type: ignore[no-untyped-def]
    claims = _mart(
        fs,
        "SELECT claim_id, event_timestamp, amount, prior_claims FROM marts.claim_features ORDER BY claim_id LIMIT 200",
    )
    before = claims[["claim_id"]].assign(event_timestamp=claims.event_timestamp - timedelta(seconds=1))
    at = claims[["claim_id"]].assign(event_timestamp=claims.event_timestamp)
    refs = ["claim_features:amount", "claim_features:prior_claims"]
    early = fs.historical(before, refs)
    assert early["amount"].isna().all()  # the claim was not reported yet: nothing may leak back
    on_time = fs.historical(at, refs).sort_values("claim_id").reset_index(drop=True)
    assert on_time["amount"].tolist() == pytest.approx(claims["amount"].tolist())
    assert on_time["prior_claims"].tolist() == claims["prior_claims"].tolist()


def test_customer_history_is_joined_as_of_each_event(fs) -> None:  # type: ignore[no-untyped-def]
    """Entity rows fall between two history rows: each must get the earlier one, never the later."""
    hist = _mart(
        fs,
        """
        SELECT customer_id, event_timestamp,
               lead(event_timestamp) OVER (PARTITION BY customer_id ORDER BY event_timestamp) AS next_ts
        FROM marts.customer_features QUALIFY next_ts IS NOT NULL
        ORDER BY customer_id, event_timestamp LIMIT 3000""",
    )
    entity = pd.DataFrame(
        {
            "customer_id": hist.customer_id,
            "event_timestamp": hist.event_timestamp + (hist.next_ts - hist.event_timestamp) / 2,
        }
    )
    entity = entity.drop_duplicates(["customer_id", "event_timestamp"]).reset_index(drop=True)
    got = fs.historical(entity, ["customer_features:claims_to_date", "customer_features:policies_to_date"])
    # the truth, computed independently from the raw tables
    from aiw.data._warehouse import warehouse

    with warehouse(fs.workspace) as conn:
        conn.register("entity", entity)
        truth = conn.execute("""
            SELECT e.customer_id, e.event_timestamp,
                   (SELECT count(*) FROM main.claims c WHERE c.customer_id = e.customer_id
                                                         AND c.reported_at <= e.event_timestamp) AS claims_to_date,
                   (SELECT count(*) FROM main.policies p WHERE p.customer_id = e.customer_id
                                                           AND p.start_date <= e.event_timestamp) AS policies_to_date
            FROM entity e""").df()
    got["event_timestamp"] = pd.to_datetime(got["event_timestamp"]).dt.tz_localize(None)
    merged = truth.merge(got, on=["customer_id", "event_timestamp"], suffixes=("_truth", "_got"))
    assert len(merged) == len(entity) > 1000
    assert (merged.claims_to_date_truth == merged.claims_to_date_got).all()
    assert (merged.policies_to_date_truth == merged.policies_to_date_got).all()


def test_training_set_has_features_labels_and_sensitive_attribute(fs) -> None:  # type: ignore[no-untyped-def]
    frame = fs.training_set(limit=300)
    assert len(frame) == 300
    assert {"claim_id", "event_timestamp", "amount", "claims_to_date", "is_fraud", "gender"} <= set(frame.columns)
    assert frame["amount"].notna().all() and frame["claims_to_date"].ge(1).all()  # a claim counts itself
    with pytest.raises(InvalidInputError, match="limit"):
        fs.training_set(limit=0)


def test_online_lookup_returns_the_newest_values(fs) -> None:  # type: ignore[no-untyped-def]
    from aiw.features.store import get_online_features

    latest = _mart(
        fs,
        """SELECT customer_id, claims_to_date FROM marts.customer_features
                          QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY event_timestamp DESC) = 1
                          ORDER BY customer_id LIMIT 5""",
    )
    claim = _mart(fs, "SELECT claim_id, customer_id, amount FROM marts.claim_features ORDER BY claim_id LIMIT 1")
    rows = [{"claim_id": int(claim.claim_id[0]), "customer_id": int(c)} for c in latest.customer_id]
    got = get_online_features(fs.workspace, rows)  # the claims_fraud feature service
    assert [g["claims_to_date"] for g in got] == latest["claims_to_date"].tolist()
    assert got[0]["amount"] == pytest.approx(float(claim.amount[0]))
    missing = fs.online([{"claim_id": 10**9}], ["claim_features:amount"])
    assert missing == [{"claim_id": 10**9, "amount": None}]


def test_bad_requests_are_refused(fs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError):
        fs.online([], ["claim_features:amount"])
    with pytest.raises(InvalidInputError, match="unknown join keys"):
        fs.online([{"policy_id": 1}], ["claim_features:amount"])
    with pytest.raises(NotFoundError, match="Unknown features"):
        fs.online([{"claim_id": 1}], ["claim_features:nope"])
    with pytest.raises(NotFoundError, match="feature service"):
        fs.online([{"claim_id": 1}], "no_such_service")
    with pytest.raises(InvalidInputError, match="event_timestamp"):
        fs.historical(pd.DataFrame({"claim_id": [1]}), ["claim_features:amount"])


def test_redis_connection_strings() -> None:
    from aiw.errors import ConfigError
    from aiw.features.store import redis_connection_string

    assert redis_connection_string("redis://127.0.0.1:6379/2") == "127.0.0.1:6379,db=2"
    assert redis_connection_string("rediss://:p%40ss@cache:6380") == "cache:6380,password=p@ss,ssl=true"
    with pytest.raises(ConfigError):
        redis_connection_string("http://x")


def test_cli_get_and_list(fs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from aiw.cli import app
    from aiw.settings import load_settings

    monkeypatch.setenv("AIW_HOME", str(fs.workspace.root))
    load_settings.cache_clear()
    try:
        runner = CliRunner()
        got = runner.invoke(
            app,
            ["features", "get", "-e", "claim_id=1", "-e", "claim_id=2", "-f", "claim_features:amount", "--json"],
            catch_exceptions=False,
        )
        assert got.exit_code == 0, got.output
        rows = json.loads(got.output)
        truth = _mart(fs, "SELECT claim_id, amount FROM marts.claim_features WHERE claim_id IN (1, 2) ORDER BY 1")
        assert [r["amount"] for r in rows] == pytest.approx(truth["amount"].tolist())
        listing = runner.invoke(app, ["features", "list"], catch_exceptions=False)
        assert "claims_to_date" in listing.output and "claim_labels" in listing.output
    finally:
        load_settings.cache_clear()
