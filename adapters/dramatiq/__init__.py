"""dramatiq-redis and dramatiq-rabbitmq backends (see backend.toml)."""
