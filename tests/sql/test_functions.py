"""The ai_* SQL functions through DuckDB: results, NULL handling, bad rows, lazy loading, the LLM ones."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import pytest

from aiw.errors import ConfigError
from aiw.sql.connection import ai_context
from aiw.sql.runner import run_query
from aiw.testing.openai_server import ChatRequest, Reply, serve_openai

pytestmark = pytest.mark.unit


def one(ws: Any, sql: str) -> Any:
    return run_query(ws, sql).rows()[0][0]


def test_registering_is_cheap_and_loads_no_model(make_workspace: Callable[..., Any]) -> None:
    ws = make_workspace("lazy")
    started = time.perf_counter()
    conn = ws.connect_warehouse()
    elapsed = time.perf_counter() - started
    try:
        names = {
            r[0]
            for r in conn.execute(
                "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE 'ai\\_%' ESCAPE '\\'"
            ).fetchall()
        }
        assert {
            "ai_sentiment",
            "ai_classify",
            "ai_embed",
            "ai_similarity",
            "ai_summarize",
            "ai_extract_answer",
            "ai_redact",
            "ai_complete",
            "ai_filter",
            "ai_translate",
            "ai_forecast",
            "ai_detect_anomalies",
        } <= names
        ctx = ai_context(ws)
        assert ctx._embedder is None and ctx._llm is None  # nothing loaded until a function runs
        assert elapsed < 2.0
        # a second connection to the same database keeps the functions (DuckDB shares them)
        second = ws.connect_warehouse()
        assert second.execute("SELECT ai_redact('x@y.com')").fetchone()[0] == "[EMAIL]"
        second.close()
    finally:
        conn.close()


def test_sentiment_and_null(notes_ws: Any) -> None:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    rows = run_query(notes_ws, "SELECT id, txt, ai_sentiment(txt) FROM notes ORDER BY id").rows()
    reference = SentimentIntensityAnalyzer()
    for _, txt, score in rows:
        if txt is None:
            assert score is None
        else:
            assert score == pytest.approx(reference.polarity_scores(txt)["compound"], abs=1e-12)
    assert rows[0][2] > 0.5 and rows[1][2] < -0.3


def test_sentiment_over_many_rows_in_worker_processes(
    make_workspace: Callable[..., Any], sentiment_pool_parts: Callable[[int], list[int]]
) -> None:
    """Batches DuckDB hands over from its threads go to the worker processes; scores stay exact."""
    import pyarrow as pa
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from aiw.testing.vader_sentences import tricky_sentences

    texts: list[str | None] = list(tricky_sentences(6_000, seed=23))
    texts[::97] = [None] * len(texts[::97])
    texts[1::89] = ["the same note, repeated"] * len(texts[1::89])
    ws = make_workspace("many_notes")
    conn = ws.connect_warehouse(ai_functions=False)
    try:
        conn.register("src", pa.table({"id": list(range(len(texts))), "txt": texts}))
        conn.execute("CREATE TABLE notes AS SELECT * FROM src")
    finally:
        conn.close()
    reference = SentimentIntensityAnalyzer()
    expected = [None if t is None else reference.polarity_scores(t)["compound"] for t in texts]
    sql = "SELECT id, ai_sentiment(txt) FROM notes ORDER BY id"
    first = [score for _, score in run_query(ws, sql).rows()]  # may score here while the pool starts
    workers = os.cpu_count() or 1
    parts = sentiment_pool_parts(workers)
    second = [score for _, score in run_query(ws, sql).rows()]
    assert first == expected
    assert second == expected
    assert parts if workers > 1 else not parts  # DuckDB's batches went to the worker processes


def test_embed_and_similarity(notes_ws: Any, embedder: Any) -> None:
    vec, norm, null_vec = run_query(
        notes_ws,
        "SELECT ai_embed('a car crash'), list_dot_product("
        "ai_embed('a car crash')::FLOAT[], ai_embed('a car crash')::FLOAT[]), "
        "ai_embed(NULL)",
    ).rows()[0]
    assert len(vec) == 384 and norm == pytest.approx(1.0, abs=1e-5) and null_vec is None
    assert np.allclose(vec, embedder.embed(["a car crash"])[0], atol=1e-5)
    near, far, null = run_query(
        notes_ws,
        "SELECT ai_similarity('the cat sat on the mat', 'a cat sitting on a rug'), "
        "ai_similarity('the cat sat on the mat', 'quarterly revenue grew 5%'), "
        "ai_similarity('x', NULL)",
    ).rows()[0]
    assert near > far + 0.3 and null is None
    typ = run_query(notes_ws, "SELECT typeof(ai_embed('x'))").rows()[0][0]
    assert typ == "FLOAT[384]"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("My car was rear-ended by a lorry at the traffic lights", "vehicle accident"),
        ("A pipe burst overnight and flooded the kitchen floor", "water damage"),
        ("Someone broke into the flat and took the laptop and jewellery", "theft"),
    ],
)
def test_classify_clear_examples(notes_ws: Any, text: str, expected: str) -> None:
    sql = f"SELECT ai_classify('{text}', ['vehicle accident', 'water damage', 'theft'])"
    assert one(notes_ws, sql) == expected


def test_classify_with_descriptions_both_ways(notes_ws: Any) -> None:
    text = "Our flight was cancelled and the luggage never arrived"
    inline = one(
        notes_ws,
        f"SELECT ai_classify('{text}', ['A: damage to a parked car', 'B: a problem on a "
        f"trip abroad', 'C: a burst water pipe'])",
    )
    separate = one(
        notes_ws,
        f"SELECT ai_classify('{text}', ['A', 'B', 'C'], ['damage to a parked car', "
        f"'a problem on a trip abroad', 'a burst water pipe'])",
    )
    assert inline == separate == "B"


def test_bad_rows_become_null_and_the_query_goes_on(notes_ws: Any) -> None:
    result = run_query(
        notes_ws,
        """
        SELECT id, ai_classify(txt, CASE WHEN id = 2 THEN []::VARCHAR[]
                                         ELSE ['vehicle accident', 'customer service'] END) AS label
        FROM notes ORDER BY id""",
    )
    labels = dict(result.rows())
    assert labels[5] == "vehicle accident" and labels[1] == labels[4] == "customer service"
    assert labels[2] is None  # empty label list: that row alone is NULL
    assert labels[3] is None  # NULL text
    assert any("labels list is empty" in w for w in result.warnings)


def test_redact_summarize_extract_extractive(notes_ws: Any) -> None:
    assert one(notes_ws, "SELECT ai_redact('card 4111 1111 1111 1111, mail x@y.org')") == "card [CARD], mail [EMAIL]"
    assert one(notes_ws, "SELECT ai_redact(NULL)") is None
    text = (
        "The claimant reported water damage in the kitchen. A pipe burst overnight. The adjuster visited on "
        "Monday. Repairs are estimated at 4000 dollars. The policy covers sudden leaks."
    )
    summary = one(notes_ws, f"SELECT ai_summarize('{text}')")
    assert summary and len(summary) < len(text) and all(s.strip() in text for s in summary.split(". ") if s)
    answer = one(notes_ws, f"SELECT ai_extract_answer('{text}', 'How much will the repairs cost?')")
    assert "4000" in answer
    rows = run_query(notes_ws, "SELECT id, ai_extract_answer(txt, question) FROM notes ORDER BY id").rows()
    assert rows[2][1] is None and rows[3][1] is None  # NULL text, NULL question


def test_llm_functions_without_an_llm_say_how_to_configure(notes_ws: Any) -> None:
    for sql in (
        "SELECT ai_complete('hello')",
        "SELECT ai_filter('text', 'is it about cars?')",
        "SELECT ai_translate('hello', 'French')",
    ):
        with pytest.raises(ConfigError) as err:
            run_query(notes_ws, sql)
        message = str(err.value)
        assert "AIW_LLM__ADAPTER=openai" in message and "AIW_LLM__BASE_URL" in message
        assert "AIW_LLM__ADAPTER=transformers" in message and "AIW_LLM__MODEL_PATH" in message
    conn = notes_ws.connect_warehouse(read_only=True)
    try:  # on a raw connection the same message reaches the DuckDB error
        with pytest.raises(duckdb.Error, match="AIW_LLM__ADAPTER=openai"):
            conn.execute("SELECT ai_complete('hello')").fetchall()
        # all-NULL input needs no model
        assert conn.execute("SELECT ai_complete(NULL)").fetchone()[0] is None
    finally:
        conn.close()


def _responder(request: ChatRequest) -> Reply | str:
    user, system = request.last_user, request.system or ""
    if "POISON" in user:
        return Reply(status=400, error_message="this prompt is refused")
    if "TRUE if it does" in system:
        return "TRUE" if "car" in user.split("Text:", 1)[1] else "FALSE"
    if "translator" in system:
        return "Bonjour le monde" if "hello world" in user else "???"
    if "summaries" in system:
        return "A short summary."
    if "NONE" in system:
        return "NONE" if "weather" in user else "4000 dollars"
    return f"echo: {user}"


def test_llm_functions_with_an_openai_compatible_server(make_workspace: Callable[..., Any]) -> None:
    with serve_openai(_responder) as base_url:
        ws = make_workspace(
            "llm", llm={"adapter": "openai", "base_url": base_url, "model": "fake", "max_retries": 0, "cache": False}
        )
        conn = ws.connect_warehouse()
        conn.execute(
            "CREATE TABLE t AS SELECT * FROM (VALUES (1, 'my car was dented'), (2, 'the roof leaks'), "
            "(3, NULL), (4, 'my car was dented'), (5, 'POISON pill')) v(id, txt)"
        )
        conn.close()
        result = run_query(
            ws,
            "SELECT id, ai_complete(txt), ai_filter(txt, 'is about a car'), "
            "ai_translate(CASE WHEN id = 1 THEN 'hello world' END, 'French') FROM t ORDER BY id",
        )
        rows = {r[0]: r[1:] for r in result.rows()}
        assert rows[1] == ["echo: my car was dented", True, "Bonjour le monde"]
        assert rows[2][:2] == ["echo: the roof leaks", False] and rows[2][2] is None
        assert rows[3] == [None, None, None]
        assert rows[5][0] is None and rows[5][1] is None  # refused by the server: NULL, others kept
        assert any("ai_complete" in w for w in result.warnings)
        # repeated prompts in a batch are sent once: 4 distinct completions + 4 filters + 1 translation
        # (+1 retried row by row for the poison batch of each function)
        assert base_url.server.request_count <= 4 + 4 + 1 + 4 + 4
        assert one(ws, "SELECT ai_summarize('A long text. With sentences.')") == "A short summary."
        assert one(ws, "SELECT ai_extract_answer('Repairs cost 4000 dollars.', 'How much?')") == "4000 dollars"
        assert one(ws, "SELECT ai_extract_answer('Repairs cost 4000 dollars.', 'What about the weather?')") is None
