"""``python -m kdgen``: the same command line as the ``kdgen`` console script."""

from kdgen.cli import main

main()
