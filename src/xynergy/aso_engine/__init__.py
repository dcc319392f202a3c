"""ASO Engine: content pieces, tracked keywords, ranking observations, trending keywords."""
