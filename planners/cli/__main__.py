"""``python -m skillstack.planners.cli`` (same as ``python -m skillstack``)."""

from skillstack.planners.cli import main

main()
