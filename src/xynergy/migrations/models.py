"""Every ORM model the migrations know about; services add their models here."""

from xynergy.platform.db.base import Base
from xynergy.platform.tenancy import models as tenancy_models

__all__ = ["Base", "tenancy_models"]
