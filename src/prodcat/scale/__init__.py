"""Scaling prediction out: batch prediction on Ray Data.

>>> from prodcat.scale.ray_predict import predict_with_ray       # doctest: +SKIP
>>> predict_with_ray("models/shop", "catalog/", "predictions.parquet")  # doctest: +SKIP
{'rows': 200000, 'needs_review': 5123, ...}

Ray is imported only when a Ray job runs, so `import prodcat.scale` is cheap.
"""
