// VectorIndex: the embedder, the vector store in SQLite, exact + HNSW + BM25 + hybrid search.
