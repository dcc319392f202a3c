"""A loaded catalogue keeps the built-in offline model, unless it says otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import gateway, http_model, write_catalogue
from xynergy.ai_routing.catalogue import OFFLINE_MODEL, load_catalogue
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.config import Settings

OFFLINE = OFFLINE_MODEL.name


def one_model_file(
    tmp_path: Path, base_url: str, *, model: dict[str, Any] | None = None, **options: Any
) -> Path:
    """Model ``cheap`` (a paid one, dearer than the free offline model), with the
    catalogue-level ``options``."""
    path = tmp_path / "catalogue.json"
    catalogue = {
        "providers": [{"name": "alpha", "kind": "openai", "base_url": base_url}],
        "models": [http_model("cheap", "alpha", **(model or {}))],
        **options,
    }
    path.write_text(json.dumps(catalogue))
    return path


class TestLoadCatalogue:
    def test_the_offline_model_is_kept_callable_by_name_but_never_ranked(
        self, tmp_path: Path
    ) -> None:
        catalogue = load_catalogue(one_model_file(tmp_path, "http://127.0.0.1:9"))
        assert [model.name for model in catalogue.models] == ["cheap", OFFLINE]
        assert catalogue.model(OFFLINE) == OFFLINE_MODEL
        assert catalogue.provider(OFFLINE_MODEL.provider).kind == "offline"
        for preference in ("quality", "balanced", "cost"):
            assert [m.name for m in catalogue.ranked(preference)] == ["cheap"]

    def test_include_offline_model_false_leaves_it_out(self, tmp_path: Path) -> None:
        path = one_model_file(tmp_path, "http://127.0.0.1:9", include_offline_model=False)
        catalogue = load_catalogue(path)
        assert [model.name for model in catalogue.models] == ["cheap"]
        assert catalogue.model(OFFLINE) is None

    def test_a_catalogue_listing_the_offline_model_itself_ranks_it(self, tmp_path: Path) -> None:
        path = write_catalogue(
            tmp_path / "catalogue.json",
            providers=[{"name": "offline", "kind": "offline"}],
            models=[{**OFFLINE_MODEL.model_dump(mode="json"), "fallbacks": []}],
        )
        catalogue = load_catalogue(path)
        assert [model.name for model in catalogue.ranked("cost")] == [OFFLINE]

    def test_a_provider_taking_the_offline_name_is_refused_with_the_way_out(
        self, tmp_path: Path
    ) -> None:
        path = write_catalogue(
            tmp_path / "catalogue.json",
            providers=[{"name": "offline", "kind": "openai", "base_url": "http://127.0.0.1:9"}],
            models=[http_model("cheap", "offline")],
        )
        with pytest.raises(pydantic.ValidationError, match="include_offline_model: false"):
            load_catalogue(path)

    def test_a_model_may_fall_back_to_the_offline_model(self, tmp_path: Path) -> None:
        path = one_model_file(tmp_path, "http://127.0.0.1:9", model={"fallbacks": [OFFLINE]})
        assert load_catalogue(path).model("cheap") is not None


@pytest.mark.asyncio
class TestServedCatalogue:
    async def test_models_lists_the_offline_model_and_it_answers_by_name(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as alpha:
            ai = AiSettings(catalogue=one_model_file(tmp_path, alpha.base_url))
            async with gateway(make_settings(), ai) as gw:
                listed = await gw.client.get("/v1/models", headers=gw.headers)
                named = await gw.chat(model=OFFLINE)
                by_cost = await gw.generate(prompt="cheapest please", preference="cost")
        assert [m["id"] for m in listed.json()["data"]] == ["cheap", OFFLINE]
        assert named.status_code == 200, named.text
        assert named.json()["provider"] == "offline"
        assert by_cost.json()["model"] == "cheap", "preference routing never picks it"
        assert alpha.calls == 1

    async def test_without_the_offline_model_naming_it_is_not_found(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        path = one_model_file(tmp_path, "http://127.0.0.1:9", include_offline_model=False)
        async with gateway(make_settings(), AiSettings(catalogue=path)) as gw:
            listed = await gw.client.get("/v1/models", headers=gw.headers)
            named = await gw.chat(model=OFFLINE)
        assert [m["id"] for m in listed.json()["data"]] == ["cheap"]
        assert named.status_code == 404

    async def test_a_failing_model_falls_back_to_the_offline_model(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as alpha:
            alpha.fail_next(1, status=503)
            path = one_model_file(tmp_path, alpha.base_url, model={"fallbacks": [OFFLINE]})
            async with gateway(make_settings(), AiSettings(catalogue=path)) as gw:
                answer = await gw.chat(model="cheap")
        assert answer.status_code == 200, answer.text
        assert answer.json()["provider"] == "offline"


@pytest.mark.asyncio
class TestModelsList:
    async def test_each_model_says_its_context_window_and_prices(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        path = one_model_file(
            tmp_path,
            "http://127.0.0.1:9",
            model={
                "context_window": 4_096,
                "input_price_per_mtok": "0.150",
                "output_price_per_mtok": "0.600",
            },
        )
        async with gateway(make_settings(), AiSettings(catalogue=path)) as gw:
            listed = await gw.client.get("/v1/models", headers=gw.headers)
        assert listed.status_code == 200, listed.text
        cheap, offline = listed.json()["data"]
        assert cheap["id"] == "cheap"
        assert cheap["context_window"] == 4_096
        assert cheap["pricing"] == {"input_usd_per_mtok": "0.150", "output_usd_per_mtok": "0.600"}
        assert offline["context_window"] == OFFLINE_MODEL.context_window
        assert offline["pricing"] == {"input_usd_per_mtok": "0", "output_usd_per_mtok": "0"}
