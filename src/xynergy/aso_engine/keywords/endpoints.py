"""Keywords endpoints of the ASO Engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse

from xynergy.aso_engine.auth import KeywordsReader, KeywordsWriter
from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.keywords import service
from xynergy.aso_engine.keywords.parsing import FileFormat
from xynergy.aso_engine.keywords.rules import (
    LOCALE_MAX_CHARS,
    TAG_MAX_CHARS,
    KeywordInvalid,
    normalise_locale,
    normalise_phrase,
)
from xynergy.aso_engine.keywords.schemas import (
    PHRASE_MAX_CHARS,
    ImportMode,
    ImportRejectedBody,
    ImportReport,
    Intent,
    Keyword,
    KeywordCreate,
    KeywordFilters,
)
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import (
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from xynergy.platform.pagination import PageParamsDep
from xynergy.platform.routing import accepts_uploads, api_router, raises
from xynergy.platform.schemas import Page, ResourceId
from xynergy.platform.tracing import current_request_id

__all__ = ["router"]

router = api_router(prefix="/api", tags=["keywords"])

LocaleParam = Annotated[str | None, Query(min_length=2, max_length=LOCALE_MAX_CHARS)]

_FORMATS: dict[str, FileFormat] = {
    "text/csv": "csv",
    "application/x-ndjson": "ndjson",
    "application/jsonl": "ndjson",
}
_CHARSETS = frozenset({"utf-8", "utf8"})


def _aso(request: Request) -> AsoSettings:
    bounds: AsoSettings = request.app.state.aso
    return bounds


def _file_format(request: Request) -> FileFormat:
    media_type, *params = request.headers.get("content-type", "").split(";")
    file_format = _FORMATS.get(media_type.strip().lower())
    charset = next(
        (p.split("=", 1)[1].strip().strip('"').lower() for p in params if "charset=" in p.lower()),
        "utf-8",
    )
    if file_format is None or charset not in _CHARSETS:
        raise UnsupportedMediaType("The body must be text/csv or application/x-ndjson (UTF-8).")
    return file_format


def _locale(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalise_locale(value)
    except KeywordInvalid as exc:
        raise ValidationFailed(f"{exc}.") from exc


@router.post("/keywords", status_code=201)
@raises(Conflict)
async def create_keyword(
    body: KeywordCreate, request: Request, session: SessionDep, auth: KeywordsWriter
) -> Keyword:
    """Track a keyword; its phrase is stored normalised (NFKC, lowercase, single spaces)."""
    keyword = await service.create_keyword(
        session, tenant_id=auth.tenant_id, data=body, bounds=_aso(request)
    )
    return Keyword.model_validate(keyword)


@router.get("/keywords")
async def list_keywords(
    session: SessionDep,
    params: PageParamsDep,
    auth: KeywordsReader,
    locale: LocaleParam = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=TAG_MAX_CHARS)] = None,
    intent: Intent | None = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=PHRASE_MAX_CHARS, description="Phrase prefix.")
    ] = None,
) -> Page[Keyword]:
    """List the tenant's keywords, newest first, one cursor page at a time."""
    filters = KeywordFilters(
        locale=_locale(locale),
        tag=normalise_phrase(tag) if tag is not None else None,
        intent=intent,
        phrase_prefix=normalise_phrase(q) if q is not None else None,
    )
    rows, cursor = await service.list_keywords(
        session, tenant_id=auth.tenant_id, filters=filters, params=params
    )
    return Page[Keyword](items=[Keyword.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/keywords/{keyword_id}")
async def get_keyword(keyword_id: ResourceId, session: SessionDep, auth: KeywordsReader) -> Keyword:
    """One of the tenant's keywords."""
    keyword = await service.get_keyword(session, tenant_id=auth.tenant_id, keyword_id=keyword_id)
    return Keyword.model_validate(keyword)


@router.delete("/keywords/{keyword_id}", status_code=204)
async def delete_keyword(
    keyword_id: ResourceId, request: Request, session: SessionDep, auth: KeywordsWriter
) -> None:
    """Stop tracking a keyword; its ranking history goes with it."""
    await service.delete_keyword(
        session,
        tenant_id=auth.tenant_id,
        keyword_id=keyword_id,
        cache=request.app.state.platform.cache,
    )


@router.post(
    "/keywords/bulk-import",
    response_model=ImportReport,
    responses={
        413: {"description": "More rows or bytes than allowed; nothing was written."},
        415: {"description": "Not text/csv or application/x-ndjson."},
        422: {"model": ImportRejectedBody, "description": "All-or-nothing with rejected rows."},
        503: {
            "description": "Other writers held the database longer than its busy timeout; "
            "nothing was written. Retry after Retry-After."
        },
    },
)
@accepts_uploads
@raises(UnsupportedMediaType)
async def bulk_import(
    request: Request,
    session: SessionDep,
    auth: KeywordsWriter,
    mode: ImportMode = "all_or_nothing",
    locale: LocaleParam = None,
) -> ImportReport | Response:
    """Import keywords from a streamed CSV or JSON-lines body; see the report for each row.

    ``best_effort`` commits every batch as it goes (other writers are never held
    back for the whole file); ``all_or_nothing`` writes every row in one final
    transaction. A refused or failed import writes nothing in either mode.
    """
    file_format = _file_format(request)
    bounds = _aso(request)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > bounds.import_max_bytes:
        raise PayloadTooLarge(
            f"The file is larger than {bounds.import_max_bytes} bytes; nothing was written."
        )
    outcome = await service.import_keywords(
        session,
        sessions=request.app.state.platform.sessionmaker,
        tenant_id=auth.tenant_id,
        chunks=request.stream(),
        file_format=file_format,
        mode=mode,
        default_locale=_locale(locale),
        bounds=bounds,
    )
    if outcome.written:
        return outcome.report
    report = outcome.report
    body = ImportRejectedBody(
        **report.model_dump(),
        error=ValidationFailed.code,
        detail=f"{report.rejected} row(s) rejected; nothing was written (mode all_or_nothing).",
        request_id=current_request_id(),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=ValidationFailed.status_code)
