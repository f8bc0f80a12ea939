"""model-bisect: find the first model in a timeline whose quality dropped."""

__all__ = ["__version__"]

__version__ = "0.1.0"
