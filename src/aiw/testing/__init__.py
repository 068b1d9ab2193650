"""Fakes and contract-test helpers that any adapter's tests can reuse.

Each fake is a real implementation of a protocol (an HTTP server speaking it, an in-memory
store), never a mock: tests stay honest about wire formats, concurrency and failures.

- :mod:`aiw.testing.openai_server`: a local HTTP server speaking the OpenAI chat completions
  protocol, scriptable to fail, stall or stream (``serve_openai``).
- :mod:`aiw.testing.index_contract`: the contract every vector index adapter passes.
- :mod:`aiw.testing.vader_sentences`: generated sentences that exercise every VADER rule.
- :mod:`aiw.testing.fraud`: one valid input row of the sample claims-fraud model.
"""

__all__: list[str] = []
