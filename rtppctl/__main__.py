"""`python -m rtppctl` runs the command line."""

from rtppctl.cli import main

main()
