"""`python -m rintik_lite` runs the CLI."""

from rintik_lite.cli import main

main()
