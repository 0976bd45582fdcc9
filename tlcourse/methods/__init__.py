"""Transfer-learning methods, one module per family (regularization, alignment, fusion).

Each family has a framework-neutral NumPy module with the formulas (``regularization``)
and thin framework modules applying them to a model (``regularization_torch``,
``regularization_tf``); importing this package imports no framework.
"""
