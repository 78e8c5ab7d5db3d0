"""redis-raw backend: the Redis ceiling (see backend.toml)."""
