"""Pure numerical core of the index: numpy/pandas in, pandas out (no Prefect, GX or network)."""

from .entropy import entropies, entropy_weights
from .index import IndexResult, ScoringError, cluster_means, score_index
from .methodology import Methodology, MethodologyError, load_methodology
from .topsis import minmax_normalize, rescale_50_100, topsis, vector_normalize
from .weights import multiple_correlation_weights, multiple_correlations

__all__ = [
    "IndexResult",
    "Methodology",
    "MethodologyError",
    "ScoringError",
    "cluster_means",
    "entropies",
    "entropy_weights",
    "load_methodology",
    "minmax_normalize",
    "multiple_correlation_weights",
    "multiple_correlations",
    "rescale_50_100",
    "score_index",
    "topsis",
    "vector_normalize",
]
