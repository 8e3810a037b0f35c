"""The ``spoold`` command line: argument parsing, commands and process wiring."""
