"""``python -m skillstack``: the command line."""

from skillstack.planners.cli import main

main()
