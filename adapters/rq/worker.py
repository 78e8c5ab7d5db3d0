"""`rq worker`, with the job module imported and the records shared before any fork.

RQ's default Worker forks a work horse per job, which imports the job's
module on its own when the worker has not: everything adapters.job imports
would be paid per job, an artefact of the harness. Imported here first, the
horse inherits it. Each horse would also write its records to a new file
(its own pid); core.recorder.share_files_with_forks makes it append to its
worker's file instead (the records keep the horse's pid).
"""

from __future__ import annotations

import sys

import adapters.job  # noqa: F401 - imported before the fork, on purpose
from core.recorder import share_files_with_forks


def main() -> None:
    share_files_with_forks()
    from rq.cli import main as rq_main  # the CLI reads sys.argv: `rq worker ...`

    sys.argv[0] = "rq"
    rq_main()


if __name__ == "__main__":
    main()
