"""Clustering kernels shared by evaluations and by the methods' E-steps.

This package imports neither ``repro.eval`` nor ``repro.methods``: both depend on it.
"""

from repro.cluster.kmeans import KMeansResult, faiss_kmeans, faiss_knn_search

__all__ = ["KMeansResult", "faiss_kmeans", "faiss_knn_search"]
