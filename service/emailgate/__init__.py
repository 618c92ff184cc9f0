"""emailgate: real-time email validation for signup forms."""

__version__ = "0.1.0"
