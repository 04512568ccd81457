"""`python -m cli`: the same program as the installed `mem`."""

from cli.main import main

main()
