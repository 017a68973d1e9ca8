"""Product catalog, embeddings, vector and keyword stores, hybrid search, ranking."""
