"""digits: config-driven experiments for handwritten digit recognition."""

__version__ = "0.1.0"
