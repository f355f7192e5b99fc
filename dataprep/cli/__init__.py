"""The thin Typer command line: each module parses options, calls the library, prints."""
