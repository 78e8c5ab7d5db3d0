"""Compare two runs: the CI regression gate (`python -m harness compare BASELINE CURRENT`).

First the fingerprints (slots, profiles, window must match; other differences are
printed). Then every case the baseline measured with a gated metric must be ok in the
current run, else the gate fails and names it (--allow-missing lists it instead). Every
metric of a case ok in both runs is compared on its per-round values: a change is
called when the medians differ by at least --threshold AND a one-sided Welch t-test on
the logs of the rounds (with --noise: a t-test whose variance pools the round noise of
earlier runs) is significant, Benjamini-Hochberg-corrected across the gated rows.
Throughput is judged with the machine's speed taken out (jobs_per_loop, harness/speed)
where both runs have it, else a library's is divided, round by round, by its broker's
raw ceiling measured in the same run; rows show the change on that basis and on the
absolute figures.
Method, formats and the measured noise: docs/ci.md.

    metrics.py      which way is better, units, what gates by default (scenario declarations)
    table.py        summary.json -> per-round values and per-case outcomes; normalisation
    fingerprint.py  are the two runs comparable?
    coverage.py     which cases cannot be judged, and which of those fail the gate
    judge.py        rows: threshold, the t-test (Welch's, or with the learned noise),
                    Benjamini-Hochberg
    noise.py        the round noise learned from earlier runs (--noise)
    render.py       text and markdown
    export.py       github-action-benchmark and Bencher JSON
    command.py      the `compare` subcommand: arguments and the run
"""
