"""Compare two runs: the CI regression gate (`python -m harness compare BASELINE CURRENT`).

Every metric two runs share is compared on its per-round values (cells with status
ok). A change is called only when the medians differ by at least --threshold AND a
one-sided Mann-Whitney U test over the rounds gives p <= alpha (0.05). With 3 rounds
on each side the smallest possible one-sided p is 1/C(6,3) = 0.05, so 3+3 is the
minimum for the test; with fewer the verdict rests on the threshold alone and every
row says so. A library's throughput is divided by its broker's raw ceiling measured in
the same run, so a baseline from a fast machine still means something on a slow one.
Method and formats: docs/ci.md.

    metrics.py  which way is better, units, what gates by default (scenario declarations)
    table.py    summary.json -> per-round values per case and metric; ceiling normalisation
    judge.py    rows: threshold and Mann-Whitney U, verdicts
    render.py   text and markdown
    export.py   github-action-benchmark and Bencher JSON
    command.py  the `compare` subcommand: arguments and the run
"""
