"""The dashboard, as a person sees it: Streamlit served for real, loaded in headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_home_page_shows_workspace_backends_and_audit(workspace) -> None:  # type: ignore[no-untyped-def]
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is required: run 'make browser' (make test does)"
    workspace.keys.create("browser-test-key", "viewer", actor="dashboard-test")
    port = _free_port()
    env = {**os.environ, "AIW_HOME": str(workspace.root)}
    server = subprocess.Popen(
        [sys.executable, "-c", "from aiw.cli import main; main()", "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("the dashboard did not start within 60 s")
        from playwright.sync_api import sync_playwright

        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
            page.get_by_text("Latest audit events").wait_for(timeout=45_000)
            page.get_by_text("Audit chain intact").wait_for(timeout=30_000)
            # tables are drawn by lazily loaded components: wait for their cells, not just the headings
            page.get_by_text("platform.db").first.wait_for(timeout=30_000)
            page.get_by_text("dashboard-test").first.wait_for(timeout=30_000)
            body = page.inner_text("body")
            page.screenshot(path=str(ARTIFACTS / "dashboard-home.png"), full_page=True)
            browser.close()
        assert "Enterprise AI Workflows" in body
        assert str(workspace.root) in body
        assert "Backends" in body
        assert "metadata" in body and "sqlite" in body and "embedded" in body
        assert "keys.create" in body and "dashboard-test" in body
    finally:
        server.terminate()
        server.wait(timeout=10)
