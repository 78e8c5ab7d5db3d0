"""Environment variable names shared across the process boundaries
(coordinator -> driver -> workers)."""

# The broker URL (with its password) travels in the driver's environment,
# never in cell.json, which stays in the results directory.
BROKER_URL_ENV = "QB_CELL_BROKER_URL"
# Where workers find the run's cell folders (their records go there).
RECORDS_DIR_ENV = "QB_RECORDS_DIR"
# Set (to anything) by the driver: jobs wait at their cell's start gate.
GATE_ENV = "QB_GATE"
# Test knob (run --inject-delay-us): microseconds of CPU every library job burns
# (adapters/job.py), a known slowdown the regression gate must catch.
INJECT_DELAY_ENV = "QB_INJECT_DELAY_US"
# What an adapter tells the worker processes it starts (its own, not a library's CLI):
# the broker URL, the cell's queue and the profile.
WORKER_URL_ENV = "QB_BROKER_URL"
WORKER_QUEUE_ENV = "QB_QUEUE"
WORKER_PROFILE_ENV = "QB_PROFILE"
