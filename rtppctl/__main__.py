"""`python -m rtppctl` runs the command line."""

from rtppctl.cli.app import main

main()
