"""Names shared by the coordinator and the driver across the process boundary."""

# The broker URL (with its password) travels in the driver's environment,
# never in cell.json, which stays in the results directory.
BROKER_URL_ENV = "QB_CELL_BROKER_URL"
