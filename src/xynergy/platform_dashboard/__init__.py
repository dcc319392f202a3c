"""Platform Dashboard: the operator's and the tenant's window on the platform's health, cost and work."""
