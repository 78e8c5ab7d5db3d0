"""asyncio baseline backend (see backend.toml)."""
