import signal
import sys


def _terminated_while_starting(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # as Ctrl-C: nothing has started yet


# importing pandas and the scenarios takes about a second: Ctrl-C or SIGTERM may come first
signal.signal(signal.SIGTERM, _terminated_while_starting)
try:
    from harness.cli import main
except KeyboardInterrupt:
    sys.stderr.write("python -m harness: interrupted\n")
    sys.exit(130)
signal.signal(signal.SIGTERM, signal.SIG_DFL)  # each command installs its own handling

sys.exit(main())
