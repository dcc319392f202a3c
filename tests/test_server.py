"""The all-in-one app: every request, matched by a mount or not, gets the platform's answer.

A mount's pattern (``/<slug>/{path:path}``, and the admin app's at the root)
stops at a newline, so ``/a%0Ab`` matched no mount and Starlette answered its
bare ``text/plain`` 404, without the platform's headers (request id, security
headers). schemathesis found it with a generated campaign id.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers import running
from xynergy.platform.config import Settings
from xynergy.server import build_all_in_one

# Percent-encoded newlines: the path the app sees holds a real "\n".
UNMOUNTED_PATHS = [
    "/a%0Ab",
    "/marketing-engine/campaigns/a%0Ab/activate",
    "/aso-engine/api/content/%0A",
]


class TestUnmatchedPaths:
    @pytest.mark.parametrize("path", UNMOUNTED_PATHS)
    async def test_a_path_no_mount_matches_is_the_platform_json_404(
        self, make_settings: Callable[..., Settings], path: str
    ) -> None:
        async with running(build_all_in_one(make_settings())) as client:
            response = await client.post(path)

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == "not_found"
        assert response.headers["x-request-id"] == response.json()["request_id"]
