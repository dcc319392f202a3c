"""The few columns a progress stream polls: the run's status and each step's state."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.db.session import unit_of_work
from xynergy.system_runtime.models import RunRecord, StepRecord

__all__ = ["Progress", "StepState", "load_progress"]

# No definition has more (RuntimeSettings.steps_max is at most 500).
_STEPS_BOUND = 500


@dataclass(frozen=True, slots=True)
class StepState:
    status: str
    attempts: int
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    status: str
    error_code: str | None
    steps: dict[str, StepState]


async def load_progress(sessions: async_sessionmaker[AsyncSession], run_id: str) -> Progress | None:
    """The run's status and its steps' states; None once the run is gone."""
    async with unit_of_work(sessions) as session:
        run = (
            await session.execute(
                select(RunRecord.status, RunRecord.error_code).where(RunRecord.id == run_id)
            )
        ).first()
        if run is None:
            return None
        rows = await session.execute(
            select(
                StepRecord.step_id, StepRecord.status, StepRecord.attempts, StepRecord.error_code
            )
            .where(StepRecord.run_id == run_id)
            .order_by(StepRecord.position)
            .limit(_STEPS_BOUND)
        )
        steps = {
            step_id: StepState(status, attempts, code) for step_id, status, attempts, code in rows
        }
    return Progress(status=run.status, error_code=run.error_code, steps=steps)
