"""Every ORM model the migrations know about; services add their models here."""

from xynergy.ai_assistant import models as assistant_models
from xynergy.ai_routing.usage import models as ai_usage_models
from xynergy.aso_engine import models as aso_engine_models
from xynergy.intelligence_gateway import models as intake_models
from xynergy.marketing_engine import models as marketing_models
from xynergy.platform import idempotency_models
from xynergy.platform.db.base import Base
from xynergy.platform.outbox import models as outbox_models
from xynergy.platform.rollups import models as rollup_models
from xynergy.platform.tenancy import models as tenancy_models
from xynergy.platform.web_sessions import models as web_session_models
from xynergy.platform_dashboard.alerts import models as alert_models
from xynergy.system_runtime import models as runtime_models
from xynergy.system_runtime.schedules import models as runtime_schedule_models

__all__ = [
    "Base",
    "alert_models",
    "ai_usage_models",
    "assistant_models",
    "aso_engine_models",
    "idempotency_models",
    "intake_models",
    "marketing_models",
    "outbox_models",
    "rollup_models",
    "runtime_models",
    "runtime_schedule_models",
    "tenancy_models",
    "web_session_models",
]
