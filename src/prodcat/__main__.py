"""`python -m prodcat ...`: the `prodcat` command, for an environment whose scripts are not on PATH."""

from prodcat.cli import main

main()
