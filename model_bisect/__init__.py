"""model-bisect: find the first model in a timeline whose quality dropped."""

__all__ = ["__version__"]

# The only place the version is written: pyproject.toml reads it (dynamic version), and both
# CLIs and the report's tool_version print it.
__version__ = "0.1.0"
