"""celery-redis and celery-rabbitmq backends (see backend.toml)."""
