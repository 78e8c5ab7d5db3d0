"""A history of runs for charts over commits (`python -m harness history add|render`).

    store.py    one small JSON per run: a trimmed summary.json (commit, date, fingerprint,
                the gated metrics of every cell, round by round), so `compare` reads it
    changes.py  where compare calls a change between consecutive comparable entries
    render.py   index.html (self-contained) and one PNG per backend
    command.py  the `history` subcommand
"""
