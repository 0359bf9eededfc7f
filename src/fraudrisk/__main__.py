"""``python -m fraudrisk`` runs the CLI."""

from fraudrisk.cli.main import main

if __name__ == "__main__":  # not when a spawned worker process imports this module
    main()
