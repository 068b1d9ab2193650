"""Rapid insights: AI functions inside DuckDB SQL, forecasts and anomalies, quick baselines.

Every warehouse connection the platform opens (:meth:`aiw.workspace.Workspace.connect_warehouse`)
gets these, bound by :func:`aiw.sql.connection.configure_connection` (models load on first use)::

    -- scalar functions; NULL in gives NULL out; a failing row gives NULL and a warning
    ai_sentiment(text)                        -> DOUBLE in [-1, 1] (VADER compound)
    ai_classify(text, ['a', 'b: described'])  -> VARCHAR (zero-shot, by embedding similarity)
    ai_classify(text, labels, descriptions)   -> VARCHAR
    ai_embed(text)                            -> FLOAT[384] (L2-normalised all-MiniLM-L6-v2)
    ai_similarity(a, b)                       -> DOUBLE (cosine of the embeddings)
    ai_summarize(text)                        -> VARCHAR (key sentences; the LLM when configured)
    ai_extract_answer(text, question)         -> VARCHAR
    ai_redact(text)                           -> VARCHAR ([EMAIL] [PHONE] [CARD] [NATIONAL_ID] [IBAN])
    ai_complete(prompt)                       -> VARCHAR  \\
    ai_filter(text, condition)                -> BOOLEAN   } need AIW_LLM__ADAPTER=openai|transformers
    ai_translate(text, to_lang)               -> VARCHAR  /

    -- table macros: the source is a table name or a query (dollar-quoting saves escaping)
    SELECT * FROM ai_forecast('daily', 'day', 'n', series_col := 'line', horizon := 30, level := 95,
                              fill := 'zero', method := 'auto');
    SELECT * FROM ai_detect_anomalies($$SELECT day, n FROM daily$$, 'day', 'n', level := 99)
    WHERE is_anomaly;

From Python: :func:`run_query` (the read-only runner behind ``aiw sql`` and ``POST /v1/sql``),
:func:`forecast`, :func:`detect_anomalies`, :func:`load_history`, :func:`baseline`,
:func:`redact`. When ``AIW_WAREHOUSE__URL`` is a PostgreSQL URL, its tables are attached
read-only as catalog ``pg`` and the same functions run over them.
"""

from aiw.sql.baseline import Leaderboard, baseline
from aiw.sql.forecast import ForecastWarning, detect_anomalies, forecast, load_history
from aiw.sql.redact import redact
from aiw.sql.runner import QueryResult, QueryTimeoutError, run_query

__all__ = [
    "ForecastWarning",
    "Leaderboard",
    "QueryResult",
    "QueryTimeoutError",
    "baseline",
    "detect_anomalies",
    "forecast",
    "load_history",
    "redact",
    "run_query",
]
