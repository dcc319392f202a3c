"""What a person would notice on a page: errors, refused loads, other hosts.

:class:`PageWatch` listens to a Playwright page for console errors, uncaught
exceptions, Content-Security-Policy violations (the ``securitypolicyviolation``
event, reported through a binding that the page's policy cannot block), failed
or refused requests and requests to any origin but the server's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response

__all__ = ["RENDER_TIMEOUT_MS", "PageWatch"]

# Swagger UI parses and renders a whole document on a shared 2-core machine.
RENDER_TIMEOUT_MS = 30_000

_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCspViolation({
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    source: event.sourceFile,
    sample: event.sample,
  });
});
"""


@dataclass
class PageWatch:
    """Everything that went wrong on ``origin``'s pages in one browser context."""

    origin: str
    problems: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> Page:
        """Watch every page of ``context``; returns a new page to drive."""
        context.expose_binding("__reportCspViolation", self._on_violation)
        context.add_init_script(_REPORT_VIOLATIONS)
        page = context.new_page()
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))
        page.on("request", self._on_request)
        page.on("requestfailed", self._on_failed)
        page.on("response", self._on_response)
        return page

    def _on_violation(self, _source: Any, violation: dict[str, str]) -> None:
        self.problems.append(f"CSP violation: {violation}")

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _on_request(self, request: Request) -> None:
        self.requested.append(request.url)
        parts = urlsplit(request.url)
        if parts.scheme != "data" and f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.problems.append(f"request to another origin: {request.url}")

    def _on_failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.url} ({request.failure})")

    def _on_response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")
