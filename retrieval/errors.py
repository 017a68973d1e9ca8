"""Errors raised by catalog ingestion and search."""


class RetrievalError(Exception):
    """Base class: the message is safe to show to the operator."""


class CatalogFileError(RetrievalError):
    """A catalog file cannot be read at all (missing, empty, wrong header)."""


class StoreUnavailable(RetrievalError):
    """The vector store (e.g. a Chroma server) cannot be reached."""


class EmbeddingModelError(RetrievalError):
    """The embedding model cannot be found or loaded."""
