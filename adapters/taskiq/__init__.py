"""taskiq backends: taskiq-redis and taskiq-rabbitmq (see backend.toml)."""
