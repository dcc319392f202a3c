"""A long import never holds the database's write lock for its whole duration.

An upload pauses mid-file (the generator below waits for an event, bounded);
while it waits, another tenant writes. On SQLite one write lock serves the
whole database, so a write that waited behind the import would fail; a short
busy timeout makes that failure fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from tests.aso_engine.keywords.conftest import Api
from tests.platform.db.lock_holder import write_lock_held
from xynergy.aso_engine.config import AsoSettings
from xynergy.platform.config import Settings

BATCH_ROWS = 10
FIRST_ROWS = 2 * BATCH_ROWS  # two whole batches, written before the pause
LATER_ROWS = 15
WAIT_MS = 200
RETRY_AFTER_SECONDS = 3
# Bounds on every wait: generous, and never reached when the code is right.
PAUSE_BOUND_SECONDS = 30.0


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        sqlite_busy_timeout_ms=WAIT_MS,
        postgres_lock_timeout_ms=WAIT_MS,
        database_busy_retry_after_seconds=RETRY_AFTER_SECONDS,
    )


@pytest.fixture
def aso_settings() -> AsoSettings:
    return AsoSettings(import_batch_rows=BATCH_ROWS)


def _rows(start: int, count: int) -> bytes:
    return "".join(f"kw {index},en-US,,,\n" for index in range(start, start + count)).encode()


class PausedUpload:
    """A CSV upload that stops after its first chunk until ``resume`` is set.

    ``first_taken`` is set when the server asks for the second chunk: by then it
    has taken every row of the first one.
    """

    def __init__(self) -> None:
        self.first_taken = asyncio.Event()
        self.resume = asyncio.Event()

    async def body(self) -> AsyncIterator[bytes]:
        yield b"phrase,locale,tags,target_url,intent\n" + _rows(0, FIRST_ROWS)
        self.first_taken.set()
        await asyncio.wait_for(self.resume.wait(), PAUSE_BOUND_SECONDS)
        yield _rows(FIRST_ROWS, LATER_ROWS)


async def _paused_import(api: Api, mode: str) -> tuple[PausedUpload, asyncio.Task[object]]:
    upload = PausedUpload()
    task: asyncio.Task[object] = asyncio.create_task(api.import_file(upload.body(), mode=mode))
    await asyncio.wait_for(upload.first_taken.wait(), PAUSE_BOUND_SECONDS)
    return upload, task


class TestWriteWhileLocked:
    async def test_a_keyword_write_is_503_with_retry_after_and_nothing_written(
        self, api: Api, database_url: str
    ) -> None:
        async with write_lock_held(database_url, "aso_keywords"):
            response = await api.client.post(
                "/api/keywords", json={"phrase": "locked out", "locale": "en-US"}, headers=api.other
            )
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
        body = response.json()
        assert set(body) == {"error", "detail", "request_id"}
        assert body["error"] == "database_busy"
        assert await api.stored(api.other_tenant_id) == 0


class TestBestEffortImport:
    async def test_another_tenants_write_goes_through_while_it_runs(self, api: Api) -> None:
        upload, task = await _paused_import(api, "best_effort")
        try:
            # Its first batches are committed already, and the lock is free.
            assert await api.stored() == FIRST_ROWS
            created = await api.client.post(
                "/api/keywords", json={"phrase": "meanwhile", "locale": "en-US"}, headers=api.other
            )
            assert created.status_code == 201, created.text
        finally:
            upload.resume.set()
        response = await asyncio.wait_for(task, PAUSE_BOUND_SECONDS)
        assert response.status_code == 200, response.text  # type: ignore[attr-defined]
        assert response.json()["inserted"] == FIRST_ROWS + LATER_ROWS  # type: ignore[attr-defined]
        assert await api.stored() == FIRST_ROWS + LATER_ROWS
        assert await api.stored(api.other_tenant_id) == 1


class TestAllOrNothingImport:
    async def test_a_paused_upload_holds_no_write_lock_and_shows_nothing_yet(
        self, api: Api
    ) -> None:
        upload, task = await _paused_import(api, "all_or_nothing")
        try:
            assert await api.stored() == 0
            created = await api.client.post(
                "/api/keywords", json={"phrase": "meanwhile", "locale": "en-US"}, headers=api.other
            )
            assert created.status_code == 201, created.text
        finally:
            upload.resume.set()
        response = await asyncio.wait_for(task, PAUSE_BOUND_SECONDS)
        assert response.status_code == 200, response.text  # type: ignore[attr-defined]
        assert response.json()["inserted"] == FIRST_ROWS + LATER_ROWS  # type: ignore[attr-defined]
        assert await api.stored() == FIRST_ROWS + LATER_ROWS


class TestStagedFinalInsert:
    """SQLite, all or nothing: the one final insert waits its turn longer than other writes."""

    HELD_SECONDS = 10 * WAIT_MS / 1000

    @pytest.fixture
    def settings(self, make_settings: Callable[..., Settings], sqlite_url: str) -> Settings:
        return make_settings(database_url=sqlite_url, sqlite_busy_timeout_ms=WAIT_MS)

    async def test_it_outwaits_the_busy_timeout_behind_another_writer(
        self, api: Api, sqlite_url: str
    ) -> None:
        upload, task = await _paused_import(api, "all_or_nothing")
        try:
            async with write_lock_held(sqlite_url, "aso_keywords"):
                upload.resume.set()
                # Ten busy timeouts later it is still waiting, not answered 503.
                await asyncio.sleep(self.HELD_SECONDS)
                assert not task.done()
        finally:
            upload.resume.set()
        response = await asyncio.wait_for(task, PAUSE_BOUND_SECONDS)
        assert response.status_code == 200, response.text  # type: ignore[attr-defined]
        assert await api.stored() == FIRST_ROWS + LATER_ROWS
