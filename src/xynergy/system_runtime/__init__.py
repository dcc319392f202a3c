"""The System Runtime: durable workflows of catalogue operations on DBOS Transact."""
