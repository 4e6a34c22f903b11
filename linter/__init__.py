"""mailproxy-lint: checks that a reverse proxy and the mail server behind it agree."""

__version__ = "0.1.0"
