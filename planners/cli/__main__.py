"""`python -m planners.cli`."""

from planners.cli import main

main()
