"""Retrieval: embeddings, the Chroma store and how processes reach it, BM25, fusion, and
hybrid search (`search`)."""
