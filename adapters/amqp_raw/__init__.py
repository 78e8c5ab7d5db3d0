"""amqp-raw backend: the RabbitMQ ceiling (see backend.toml)."""
