"""Models of the course: the small source networks, their zoo of trained weights, and
weight transfer between PyTorch and Keras.

Framework-neutral modules (importing them imports neither PyTorch nor TensorFlow):

* :mod:`tlcourse.models.architectures` — the small CNN and MLP, described once;
* :mod:`tlcourse.models.convert` — PyTorch ↔ Keras weight layouts, as NumPy arrays;
* :mod:`tlcourse.models.zoo` — recipes and the checked cache of trained source models;
* :mod:`tlcourse.models.imagenet` — ImageNet preprocessing, class names, ``decode``;
* :mod:`tlcourse.models.pth_format` — reads a PyTorch ``.pth`` state dict into NumPy arrays;
* :mod:`tlcourse.models.efficientnet_weights` — EfficientNet-Lite0's bundled weights file.

Framework modules, imported explicitly by a notebook: ``small_cnn_torch`` /
``small_cnn_tf`` (build the networks), ``zoo_torch`` / ``zoo_tf`` (trained models),
``efficientnet_torch`` / ``efficientnet_tf`` (EfficientNet-Lite0 with ImageNet weights),
``minilm_torch`` (the all-MiniLM-L6-v2 sentence encoder).
"""
