"""cache_builder: the deterministic golden feature cache and its drift check."""

__all__: list[str] = []
