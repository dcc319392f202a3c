"""Marketing Engine: keyword research, campaign generation from templates, analytics."""
