"""The ``xynergy`` command groups and what the commands share.

:mod:`xynergy.cli` assembles them: one-line errors (``errors``), the migrated
database and tenant references (``database``), plain or JSON output (``output``),
shared options (``options``), and the ``tenants``, ``keys`` and ``aso`` groups.
"""
