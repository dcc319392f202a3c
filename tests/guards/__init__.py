"""Guards that watch the whole test suite for a broken invariant (pytest plugins)."""
