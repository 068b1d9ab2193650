"""Shared helpers for the benchmarks: where results go and how they are written."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

__all__ = ["RESULTS", "write_result"]

RESULTS = Path(__file__).resolve().parent.parent / "bench-results"


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench-results/<name>.json`` atomically, with the machine it ran on."""
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        **payload,
    }
    target = RESULTS / f"{name}.json"
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    tmp.replace(target)
    return target
