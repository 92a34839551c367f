"""Retrieval: the embedding in use (`vectors`) and hybrid search (`search`)."""
