"""The real-time host around the engine: the live session that owns a run's parts and their order."""
