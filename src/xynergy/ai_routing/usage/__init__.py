"""Usage ledger and budgets."""
