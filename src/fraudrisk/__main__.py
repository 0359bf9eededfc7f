"""``python -m fraudrisk`` runs the CLI."""

from fraudrisk.cli import main

main()
