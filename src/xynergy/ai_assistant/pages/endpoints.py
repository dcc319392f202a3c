"""The chat page: ``GET /`` of the AI Assistant, in place of the generic index.

The page is a template file and static files (``platform/templates/chat.html``,
``platform/static/chat.js`` and ``chat.css``, beside the other pages so they share
one asset table and one frame); replies are Markdown rendered by ``marked`` and
sanitised by DOMPurify, both from npm (``make docs-assets``). It signs in by
exchanging an API key for the platform's session cookie (``POST {app}/session``)
and then calls this app's API with that cookie and the CSRF token it keeps in
memory: no key is ever stored in the browser.

The platform's ``/`` route serves it for this app (``app.state.home_page``);
every other app keeps the services index there.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from xynergy.ai_assistant.config import TITLE_HARD_MAX, AssistantSettings
from xynergy.platform.docs_assets import MARKDOWN_FILES, installed
from xynergy.platform.docs_pages import render_page
from xynergy.platform.exceptions import XynergyError

__all__ = ["CHAT_CONTENT_SECURITY_POLICY", "ChatUnavailable", "chat_page"]

# Scripts and styles from here only (no inline ones, no eval); the API's calls to
# this origin; data: images for nothing but the browser's own form controls. HTML
# in a message is shown as text and a Markdown image as a link (chat.js), and the
# sanitiser drops <img>, <style> and style attributes besides, so no reply can make
# the page break this policy or load anything from elsewhere.
CHAT_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class ChatUnavailable(XynergyError):
    """The Markdown parser and sanitiser are not installed next to the package."""

    status_code = 503
    code = "chat_unavailable"
    default_detail = (
        "The chat page is not installed on this server: run `make docs-assets` "
        "(npm ci) and restart it. The API is at api/conversations."
    )


async def chat_page(request: Request) -> Response:
    """Chat with the assistant: sign in with an API key, then talk.

    Served by the platform's ``/`` route (``app.state.home_page``), which brings
    its rate class (the pages') and its public access.
    """
    if not installed(MARKDOWN_FILES):
        raise ChatUnavailable()
    assistant: AssistantSettings = request.app.state.assistant
    context = {
        "message_max_chars": assistant.message_max_chars,
        "title_max_chars": TITLE_HARD_MAX,
    }
    return render_page(request, "chat.html", CHAT_CONTENT_SECURITY_POLICY, context)
