import sys

try:  # importing pandas and the scenarios takes about a second: Ctrl-C may come first
    from harness.cli import main
except KeyboardInterrupt:
    sys.stderr.write("python -m harness: interrupted\n")
    sys.exit(130)

sys.exit(main())
