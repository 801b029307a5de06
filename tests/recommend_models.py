"""Small recommenders, quick to fit, one per model class: the save/load tests of
tests/recommend run every check on each of them."""
from fastengage.recommend import ALS, BPR, ItemKNN


def small_models(knn_measure="cosine", numpy_als=False):
    """name -> factory of an unfitted model; ``numpy_als`` adds ALS on its NumPy path."""
    models = {"als": lambda: ALS(factors=6, iterations=2, seed=1)}
    if numpy_als:
        models["als_numpy"] = lambda: ALS(factors=6, iterations=2, seed=1, use_native=False)
    models["bpr"] = lambda: BPR(factors=6, iterations=2, seed=1, n_threads=1)
    models["knn"] = lambda: ItemKNN(knn_measure, K=5)
    return models
