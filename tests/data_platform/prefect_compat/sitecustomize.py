"""Test-only compatibility shim: lets Prefect 3.8.8's temporary server start under FastAPI 0.165.

FastAPI 0.165 removed the ``min_items``/``max_items`` aliases of ``Body``, which Prefect 3.8.8's
server routes still pass; the server then dies at import. The test that runs a pipeline as a
Prefect flow puts this folder on PYTHONPATH (so the server's subprocess loads it too) and maps
the old names to ``min_length``/``max_length``. Production deployments run against a real
Prefect server and never load this file.
"""

try:
    import fastapi
    import fastapi.param_functions as _pf

    _body = _pf.Body

    def _compat_body(*args, min_items=None, max_items=None, **kwargs):  # type: ignore[no-untyped-def]
        if min_items is not None:
            kwargs.setdefault("min_length", min_items)
        if max_items is not None:
            kwargs.setdefault("max_length", max_items)
        return _body(*args, **kwargs)

    fastapi.Body = _compat_body
    _pf.Body = _compat_body
except Exception:
    pass
