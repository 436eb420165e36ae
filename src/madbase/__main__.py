"""`python -m madbase` is the `madbase` command."""

from madbase.cli import main

main()
