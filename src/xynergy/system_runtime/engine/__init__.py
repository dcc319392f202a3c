"""The runtime's engine: DBOS Transact hosted in the process, and the run workflow."""
