"""The package's version: the C library's major.minor it binds, and its own patch."""
__version__ = "0.2.0"
