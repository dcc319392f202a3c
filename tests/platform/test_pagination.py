"""Keyset pagination: opaque cursors and stable newest-first pages."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import BigInteger, Integer, SmallInteger, String, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.corpus import FORGED_CURSORS
from xynergy.platform.config import Settings
from xynergy.platform.db.base import new_id
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.exceptions import BadRequest
from xynergy.platform.pagination import (
    PageParams,
    decode_cursor,
    decode_keyset_cursor,
    encode_cursor,
    encode_keyset_cursor,
    keyset_page,
    keyset_page_by,
    split_page,
)
from xynergy.platform.tenancy.models import Tenant


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


class TestCursor:
    @pytest.mark.parametrize(
        "created_at",
        [
            datetime(2026, 11, 26, 12, 30, 45, 123456, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ],
        ids=["microseconds", "midnight", "offset"],
    )
    def test_round_trip(self, created_at: datetime) -> None:
        row_id = new_id()
        assert decode_cursor(encode_cursor(created_at, row_id)) == (created_at, row_id)

    def test_cursor_is_url_safe(self) -> None:
        cursor = encode_cursor(datetime.now(UTC), "a" * 32)
        assert cursor.replace("-", "").replace("_", "").isalnum()

    @pytest.mark.parametrize(
        "cursor",
        [
            "not-a-cursor!",
            "@@@@",
            "a",
            _b64("not json"),
            _b64('"just a string"'),
            _b64("42"),
            _b64("null"),
            _b64("[]"),
            _b64('["2026-01-01T00:00:00+00:00"]'),
            _b64('["2026-01-01T00:00:00+00:00", "id", "extra"]'),
            _b64('["not a date", "id"]'),
            _b64('["2026-01-01T00:00:00+00:00", 7]'),
            _b64('[20260101, "id"]'),
            _b64('{"2026-01-01T00:00:00+00:00": 1, "id": 2}'),
            # Valid ISO dates that fall outside datetime's range once put in UTC.
            _b64('["0001-01-01T00:00:00+14:00", "id"]'),
            _b64('["9999-12-31T23:59:59-14:00", "id"]'),
            base64.urlsafe_b64encode(b"\xff\xfe\x00garbage").decode(),
        ],
        ids=[
            "punctuation",
            "at-signs",
            "one-char",
            "not-json",
            "json-string",
            "json-number",
            "json-null",
            "empty-list",
            "one-field",
            "three-fields",
            "bad-date",
            "numeric-id",
            "numeric-date",
            "json-object",
            "before-year-one-in-utc",
            "after-year-9999-in-utc",
            "binary",
        ],
    )
    def test_garbage_is_a_bad_request(self, cursor: str) -> None:
        with pytest.raises(BadRequest):
            decode_cursor(cursor)


class _Base(DeclarativeBase):
    pass


class _Ranked(_Base):
    __tablename__ = "ranked"

    small: Mapped[int] = mapped_column(SmallInteger)
    normal: Mapped[int] = mapped_column(Integer)
    big: Mapped[int] = mapped_column(BigInteger)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)


_KEYSET = (int, datetime, str)
# 2**31 is a valid 64-bit position: only its column can refuse it (see below).
_FORGED_FOR_ANY_COLUMN = {k: v for k, v in FORGED_CURSORS.items() if k != "int32_overflow"}


class TestForgedCursors:
    @pytest.mark.parametrize("cursor", FORGED_CURSORS.values(), ids=FORGED_CURSORS.keys())
    def test_the_created_keyset_refuses_every_forged_cursor(self, cursor: str) -> None:
        with pytest.raises(BadRequest):
            decode_cursor(cursor)

    @pytest.mark.parametrize(
        "cursor", _FORGED_FOR_ANY_COLUMN.values(), ids=_FORGED_FOR_ANY_COLUMN.keys()
    )
    def test_a_generic_keyset_refuses_every_forged_cursor(self, cursor: str) -> None:
        with pytest.raises(BadRequest):
            decode_keyset_cursor(cursor, _KEYSET)

    @pytest.mark.parametrize("value", [2**63 - 1, -(2**63)])
    def test_the_widest_integers_still_decode(self, value: int) -> None:
        moment = datetime(2026, 1, 1, tzinfo=UTC)
        cursor = encode_keyset_cursor([value, moment, "id"])

        assert decode_keyset_cursor(cursor, _KEYSET) == (value, moment, "id")

    @pytest.mark.parametrize(
        ("column", "fits", "overflows"),
        [
            (_Ranked.small, 2**15 - 1, 2**15),
            (_Ranked.normal, -(2**31), -(2**31) - 1),
            (_Ranked.big, 2**63 - 1, 2**63),
        ],
        ids=["smallint", "integer", "bigint"],
    )
    def test_a_position_outside_its_columns_range_is_refused(
        self, column: object, fits: int, overflows: int
    ) -> None:
        columns = [column, _Ranked.id]
        keyset_page_by(select(_Ranked), columns=columns, after=(fits, "id"), limit=2)  # type: ignore[list-item]

        with pytest.raises(BadRequest):
            keyset_page_by(select(_Ranked), columns=columns, after=(overflows, "id"), limit=2)  # type: ignore[list-item]


class TestSplitPage:
    def test_a_short_page_has_no_next_cursor(self) -> None:
        params = PageParams(limit=3, after=None)
        page, cursor = split_page([1, 2], params, lambda row: (datetime.now(UTC), str(row)))
        assert page == [1, 2]
        assert cursor is None

    def test_an_exact_page_has_no_next_cursor(self) -> None:
        params = PageParams(limit=2, after=None)
        page, cursor = split_page([1, 2], params, lambda row: (datetime.now(UTC), str(row)))
        assert page == [1, 2]
        assert cursor is None

    def test_the_extra_row_is_dropped_and_positions_the_next_page(self) -> None:
        moment = datetime(2026, 11, 26, tzinfo=UTC)
        params = PageParams(limit=2, after=None)
        page, cursor = split_page([1, 2, 3], params, lambda row: (moment, f"id-{row}"))
        assert page == [1, 2]
        assert cursor is not None
        assert decode_cursor(cursor) == (moment, "id-2")


@pytest.fixture
async def sessionmaker(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine_from_settings(make_settings(database_url=database_url))
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        await engine.dispose()


async def _walk(
    sessionmaker: async_sessionmaker[AsyncSession], limit: int
) -> list[tuple[datetime, str]]:
    served: list[tuple[datetime, str]] = []
    after = None
    for _ in range(100):
        params = PageParams(limit=limit, after=after)
        query = keyset_page(
            select(Tenant), created_column=Tenant.created_at, id_column=Tenant.id, params=params
        )
        async with sessionmaker() as session:
            rows = (await session.scalars(query)).all()
        assert len(rows) <= limit + 1, "keyset_page must fetch at most one extra row"
        page, cursor = split_page(rows, params, lambda t: (t.created_at, t.id))
        served.extend((t.created_at, t.id) for t in page)
        if cursor is None:
            return served
        after = decode_cursor(cursor)
    pytest.fail("pagination did not terminate")


class TestKeysetPage:
    @pytest.mark.parametrize("limit", [1, 2, 3, 7])
    async def test_ties_on_created_at_are_broken_by_id(
        self, sessionmaker: async_sessionmaker[AsyncSession], limit: int
    ) -> None:
        tie = datetime(2026, 11, 26, 12, 0, 0, 500000, tzinfo=UTC)
        earlier = tie - timedelta(seconds=1)
        later = tie + timedelta(microseconds=1)
        rows = [{"id": new_id(), "name": f"tie-{n}", "created_at": tie} for n in range(5)]
        rows += [
            {"id": new_id(), "name": "earlier", "created_at": earlier},
            {"id": new_id(), "name": "later", "created_at": later},
        ]
        async with sessionmaker() as session, session.begin():
            await session.execute(insert(Tenant), rows)

        served = await _walk(sessionmaker, limit)

        expected = sorted(((r["created_at"], r["id"]) for r in rows), reverse=True)
        assert served == expected
        assert len({row_id for _, row_id in served}) == len(rows)

    async def test_empty_table_gives_an_empty_last_page(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        assert await _walk(sessionmaker, 2) == []

    async def test_position_with_a_utc_offset_means_the_same_instant(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        base = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
        rows = [
            {"id": new_id(), "name": f"t-{n}", "created_at": base + timedelta(hours=n)}
            for n in range(4)
        ]
        async with sessionmaker() as session, session.begin():
            await session.execute(insert(Tenant), rows)
        position = rows[2]
        in_utc = (position["created_at"], position["id"])
        in_india = (
            position["created_at"].astimezone(timezone(timedelta(hours=5, minutes=30))),
            position["id"],
        )

        pages = []
        for after in (in_utc, in_india):
            params = PageParams(limit=10, after=after)
            query = keyset_page(
                select(Tenant), created_column=Tenant.created_at, id_column=Tenant.id, params=params
            )
            async with sessionmaker() as session:
                pages.append([t.id for t in (await session.scalars(query)).all()])

        assert pages[0] == [rows[1]["id"], rows[0]["id"]]
        assert pages[1] == pages[0]
