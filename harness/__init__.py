"""queuebench coordinator: CLI, brokers, environments, driver, statistics, results."""
