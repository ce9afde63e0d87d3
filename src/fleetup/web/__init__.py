"""The web app: server-rendered pages in zh-TW and English, with htmx for live parts."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")


def mount(app: FastAPI) -> None:
    """Add the pages and the static files to ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
