"""Waiting on a page under the site's Content-Security-Policy."""
from __future__ import annotations

import time


def wait_until(page, expression: str, timeout_s: float = 20.0) -> None:
    """Poll a JavaScript expression until it is true. Not ``page.wait_for_function``: its polling evaluates
    the string with ``eval`` inside the page, which the site's CSP (no 'unsafe-eval') rightly blocks."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout_s} s: {expression}")
        page.wait_for_timeout(100)
