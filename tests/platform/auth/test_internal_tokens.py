"""Internal tokens: minted per call, verified as strictly as a key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends

from tests.helpers import running
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.internal_tokens import INTERNAL_TOKEN_HEADER, InternalTokens
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import Forbidden, Unauthorized
from xynergy.platform.routing import api_router

MakeSettings = Callable[..., Settings]

NOW = 1_800_000_000.0
TTL = 60
LEEWAY = 5
CURRENT = b"current-secret-" + b"c" * 32
PREVIOUS = b"previous-secret-" + b"p" * 32
CALLER = AuthContext(
    tenant_id="tenant-1",
    key_id="key-1",
    key_tenant_id="tenant-1",
    scopes=frozenset({"content:read", "content:write"}),
)
READ = frozenset({"content:read"})


def tokens(*secrets: bytes, ttl: int = TTL) -> InternalTokens:
    return InternalTokens(secrets=secrets or (CURRENT,), ttl_seconds=ttl, leeway_seconds=LEEWAY)


def mint(issuer: InternalTokens, audience: str = "svc-b") -> str:
    return issuer.mint(CALLER, audience=audience, scopes=READ, request_id="req-1")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock(NOW)
    monkeypatch.setattr(time, "time", frozen)
    return frozen


def reencode(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


class TestRoundTrip:
    def test_a_minted_token_verifies_to_the_caller_with_the_granted_scopes(
        self, clock: Clock
    ) -> None:
        issuer = tokens()

        context = issuer.verify(mint(issuer), audience="svc-b")

        assert context == AuthContext(
            tenant_id="tenant-1",
            key_id="key-1",
            key_tenant_id="tenant-1",
            scopes=READ,
            via="internal",
        )

    def test_an_admin_acting_for_a_tenant_keeps_both_tenants(self, clock: Clock) -> None:
        issuer = tokens()
        admin = AuthContext(
            tenant_id="ops", key_id="key-9", key_tenant_id="ops", scopes=frozenset({"admin"})
        ).acting_for("tenant-7")

        token = issuer.mint(admin, audience="svc-b", scopes=READ, request_id=None)
        context = issuer.verify(token, audience="svc-b")

        assert (context.tenant_id, context.key_tenant_id) == ("tenant-7", "ops")
        assert context.scopes == READ
        assert not context.is_admin

    def test_the_token_carries_the_request_id_and_audience(self, clock: Clock) -> None:
        claims = claims_of(mint(tokens()))

        assert claims["rid"] == "req-1"
        assert claims["aud"] == "svc-b"
        assert claims["exp"] - claims["iat"] == TTL


class TestMinting:
    def test_scopes_the_caller_lacks_are_refused(self) -> None:
        with pytest.raises(Forbidden):
            tokens().mint(
                CALLER,
                audience="svc-b",
                scopes=frozenset({"content:read", "keywords:write"}),
                request_id=None,
            )


class TestVerification:
    def test_another_audience_is_refused(self, clock: Clock) -> None:
        issuer = tokens()

        with pytest.raises(Unauthorized, match="another service"):
            issuer.verify(mint(issuer, audience="svc-b"), audience="svc-c")

    def test_a_token_is_accepted_until_expiry_plus_leeway(self, clock: Clock) -> None:
        issuer = tokens()
        token = mint(issuer)

        clock.now = NOW + TTL + LEEWAY - 1

        assert issuer.verify(token, audience="svc-b").key_id == "key-1"

    def test_an_expired_token_is_refused(self, clock: Clock) -> None:
        issuer = tokens()
        token = mint(issuer)

        clock.now = NOW + TTL + LEEWAY + 1

        with pytest.raises(Unauthorized, match="expired"):
            issuer.verify(token, audience="svc-b")

    def test_a_token_issued_in_the_future_is_refused(self, clock: Clock) -> None:
        issuer = tokens()
        clock.now = NOW + 10 * LEEWAY
        token = mint(issuer)

        clock.now = NOW

        with pytest.raises(Unauthorized, match="lifetime"):
            issuer.verify(token, audience="svc-b")

    def test_a_lifetime_longer_than_the_ttl_is_refused(self, clock: Clock) -> None:
        token = mint(tokens(ttl=10 * TTL))

        with pytest.raises(Unauthorized, match="lifetime"):
            tokens(ttl=TTL).verify(token, audience="svc-b")

    def test_a_tampered_payload_is_refused(self, clock: Clock) -> None:
        issuer = tokens()
        token = mint(issuer)
        version, _, signature = token.split(".")
        claims = claims_of(token)
        claims["scp"] = ["admin"]

        with pytest.raises(Unauthorized, match="signature"):
            issuer.verify(f"{version}.{reencode(claims)}.{signature}", audience="svc-b")

    def test_a_tampered_signature_is_refused(self, clock: Clock) -> None:
        issuer = tokens()
        version, payload, signature = mint(issuer).split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

        with pytest.raises(Unauthorized, match="signature"):
            issuer.verify(f"{version}.{payload}.{flipped}", audience="svc-b")

    @pytest.mark.parametrize(
        "token",
        [
            pytest.param("", id="empty"),
            pytest.param("garbage", id="garbage"),
            pytest.param("v1.", id="no-payload"),
            pytest.param("v1.payload", id="no-signature"),
            pytest.param("v2.e30.c2ln", id="unknown-version"),
            pytest.param("v1..c2ln", id="empty-payload"),
            pytest.param("v1.e30.", id="empty-signature"),
            pytest.param("v1.e30.c2ln\xe9", id="non-ascii-signature"),
            pytest.param("v1.e30\xe9.c2ln", id="non-ascii-payload"),
        ],
    )
    def test_a_malformed_token_is_refused(self, token: str) -> None:
        with pytest.raises(Unauthorized):
            tokens().verify(token, audience="svc-b")

    def test_a_token_signed_by_another_secret_is_refused(self, clock: Clock) -> None:
        with pytest.raises(Unauthorized, match="signature"):
            tokens(CURRENT).verify(mint(tokens(b"x" * 48)), audience="svc-b")


def signed(payload: bytes, secret: bytes = CURRENT) -> str:
    """A token whose payload is ``payload`` exactly, correctly signed with ``secret``."""
    encoded = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    digest = hmac.new(secret, f"v1.{encoded}".encode(), hashlib.sha256).digest()
    return f"v1.{encoded}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"


def valid_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "ten": "tenant-1",
        "kid": "key-1",
        "ktn": "tenant-1",
        "scp": ["content:read"],
        "rid": "req-1",
        "aud": "svc-b",
        "iat": int(NOW),
        "exp": int(NOW) + TTL,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not _MISSING}


_MISSING = object()
# Validly signed (a peer sharing the secret minted them) yet malformed: each must be
# a 401, never a 500.
MALFORMED_CLAIMS = {
    "payload_is_a_list": json.dumps([1, 2]).encode(),
    "payload_is_a_string": json.dumps("claims").encode(),
    "payload_is_null": b"null",
    "payload_is_a_number": b"5",
    "payload_is_not_utf8": b'{"ten":"\xff\xfe"}',
    "payload_is_deeply_nested": b"[" * 100_000 + b"]" * 100_000,
    "scopes_a_number": json.dumps(valid_claims(scp=5)).encode(),
    "scopes_a_string": json.dumps(valid_claims(scp="content:read")).encode(),
    "scopes_hold_a_number": json.dumps(valid_claims(scp=[1])).encode(),
    "scopes_hold_null": json.dumps(valid_claims(scp=[None])).encode(),
    "scopes_missing": json.dumps(valid_claims(scp=_MISSING)).encode(),
    "tenant_null": json.dumps(valid_claims(ten=None)).encode(),
    "tenant_a_number": json.dumps(valid_claims(ten=5)).encode(),
    "tenant_empty": json.dumps(valid_claims(ten="")).encode(),
    "tenant_holds_nul": json.dumps(valid_claims(ten="tenant\x00")).encode(),
    "tenant_holds_a_lone_surrogate": json.dumps(valid_claims(ten="\ud800")).encode(),
    "tenant_missing": json.dumps(valid_claims(ten=_MISSING)).encode(),
    "key_a_list": json.dumps(valid_claims(kid=[])).encode(),
    "key_tenant_an_object": json.dumps(valid_claims(ktn={})).encode(),
    "issued_a_bool": json.dumps(valid_claims(iat=True)).encode(),
    "issued_a_float": json.dumps(valid_claims(iat=NOW)).encode(),
    "expiry_a_string": json.dumps(valid_claims(exp="soon")).encode(),
    "expiry_huge": json.dumps(valid_claims(exp=10**400)).encode(),
}


class TestMalformedClaims:
    def test_a_well_formed_token_built_here_is_accepted(self, clock: Clock) -> None:
        context = tokens().verify(signed(json.dumps(valid_claims()).encode()), audience="svc-b")

        assert (context.tenant_id, context.scopes) == ("tenant-1", frozenset({"content:read"}))

    @pytest.mark.parametrize("payload", MALFORMED_CLAIMS.values(), ids=MALFORMED_CLAIMS.keys())
    def test_a_signed_token_with_malformed_claims_is_refused(
        self, clock: Clock, payload: bytes
    ) -> None:
        with pytest.raises(Unauthorized):
            tokens().verify(signed(payload), audience="svc-b")


class TestSecretRotation:
    def test_the_previous_secret_is_accepted_when_configured(
        self, clock: Clock, make_settings: MakeSettings
    ) -> None:
        rotated = InternalTokens.from_settings(
            make_settings(
                internal_token_secret=CURRENT.decode(),
                internal_token_previous_secret=PREVIOUS.decode(),
            )
        )

        context = rotated.verify(mint(tokens(PREVIOUS)), audience="svc-b")

        assert context.key_id == "key-1"

    def test_the_previous_secret_is_refused_once_dropped(
        self, clock: Clock, make_settings: MakeSettings
    ) -> None:
        current_only = InternalTokens.from_settings(
            make_settings(internal_token_secret=CURRENT.decode())
        )

        with pytest.raises(Unauthorized, match="signature"):
            current_only.verify(mint(tokens(PREVIOUS)), audience="svc-b")

    def test_tokens_are_signed_with_the_current_secret(
        self, clock: Clock, make_settings: MakeSettings
    ) -> None:
        rotated = InternalTokens.from_settings(
            make_settings(
                internal_token_secret=CURRENT.decode(),
                internal_token_previous_secret=PREVIOUS.decode(),
            )
        )

        token = mint(rotated)

        assert tokens(CURRENT).verify(token, audience="svc-b").key_id == "key-1"
        with pytest.raises(Unauthorized):
            tokens(PREVIOUS).verify(token, audience="svc-b")


ReadAuth = Annotated[AuthContext, Depends(require_scopes("content:read"))]


def whoami_router() -> APIRouter:
    router = api_router()

    @router.get("/whoami")
    async def whoami(caller: ReadAuth) -> dict[str, str]:
        """The caller's key id and how it authenticated."""
        return {"key_id": caller.key_id, "via": caller.via}

    return router


class TestPresentedToAnApp:
    async def test_the_right_audience_is_served_and_the_wrong_one_is_401(
        self, make_settings: MakeSettings
    ) -> None:
        app = create_service_app(
            slug="svc-b", title="svc-b", settings=make_settings(), routers=[whoami_router()]
        )
        async with running(app) as client:
            issuer = app.state.platform.internal_tokens
            right = await client.get(
                "/whoami", headers={INTERNAL_TOKEN_HEADER: mint(issuer, audience="svc-b")}
            )
            wrong = await client.get(
                "/whoami", headers={INTERNAL_TOKEN_HEADER: mint(issuer, audience="svc-c")}
            )

        assert right.status_code == 200, right.text
        assert right.json() == {"key_id": "key-1", "via": "internal"}
        assert wrong.status_code == 401, wrong.text
        assert wrong.json()["error"] == "unauthorized"
        assert wrong.json()["request_id"] == wrong.headers["x-request-id"]

    async def test_a_non_ascii_token_is_401(self, make_settings: MakeSettings) -> None:
        app = create_service_app(
            slug="svc-b", title="svc-b", settings=make_settings(), routers=[whoami_router()]
        )
        async with running(app) as client:
            # Header bytes outside ASCII arrive in the app as latin-1 text.
            response = await client.get(
                "/whoami", headers={INTERNAL_TOKEN_HEADER.encode(): b"v1.e30.c2ln\xe9"}
            )

        assert response.status_code == 401, response.text
        assert response.json()["error"] == "unauthorized"

    @pytest.mark.parametrize(
        "claims", ["payload_is_a_list", "scopes_a_number", "tenant_null", "tenant_holds_nul"]
    )
    async def test_a_signed_token_with_malformed_claims_is_401(
        self, make_settings: MakeSettings, claims: str
    ) -> None:
        settings = make_settings(internal_token_secret=CURRENT.decode())
        app = create_service_app(
            slug="svc-b", title="svc-b", settings=settings, routers=[whoami_router()]
        )
        now = time.time()
        payload = (
            MALFORMED_CLAIMS[claims]
            .replace(str(int(NOW)).encode(), str(int(now)).encode())
            .replace(str(int(NOW) + TTL).encode(), str(int(now) + TTL).encode())
        )
        async with running(app) as client:
            response = await client.get("/whoami", headers={INTERNAL_TOKEN_HEADER: signed(payload)})

        assert response.status_code == 401, response.text
        assert set(response.json()) == {"error", "detail", "request_id"}

    async def test_a_token_without_the_route_scope_is_403(
        self, make_settings: MakeSettings
    ) -> None:
        app = create_service_app(
            slug="svc-b", title="svc-b", settings=make_settings(), routers=[whoami_router()]
        )
        async with running(app) as client:
            token = app.state.platform.internal_tokens.mint(
                CALLER, audience="svc-b", scopes=frozenset({"content:write"}), request_id=None
            )
            response = await client.get("/whoami", headers={INTERNAL_TOKEN_HEADER: token})

        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"
