"""Timeline sources: the ordered list of models to search, from arguments, a file or git."""
