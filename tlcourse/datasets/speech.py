"""Spoken digits "zero" … "nine" in several languages, as log-mel spectrograms.

The clips were synthesized with the speech synthesizer espeak-ng (a GPL tool, run only
when the data is built) in many voices, speaking rates and pitches, with background
noise added at random signal-to-noise ratios; see :mod:`tlcourse.datasets.build_speech`,
which regenerates ``tlcourse/data/speech/spoken_digits_<language>.npz`` deterministically.
The generated data is ours, released under CC0. Loading it needs NumPy only: no
espeak-ng, no network.

* :data:`LANGUAGES` — the languages shipped, with :data:`WORDS` their digit words;
* :func:`load_spoken_digits` — an ``ImageSet`` of spectrograms, split by voice;
* :func:`waveforms` — one short clip per digit to listen to;
* :func:`mel_filterbank`, :func:`log_mel` — the spectrogram computation, in NumPy.

The mel scale (HTK form, O'Shaughnessy 1987) maps a frequency ``f`` in Hz to

    mel(f) = 2595 · log10(1 + f / 700),      f(mel) = 700 · (10^(mel / 2595) − 1),

so equal steps in mel are roughly equal steps in perceived pitch: dense below 1 kHz,
sparse above.

>>> from tlcourse.datasets.speech import load_spoken_digits
>>> ds = load_spoken_digits("en")                       # doctest: +SKIP
>>> ds.x_train.shape[1:], ds.classes[:3]                # doctest: +SKIP
((32, 32), ['zero', 'one', 'two'])
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LANGUAGES = ("en", "es", "de")
"""Languages shipped: English, Spanish, German (espeak-ng language codes)."""

WORDS = {
    "en": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    "es": ("cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"),
    "de": ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"),
}
"""The words for the digits 0–9 in each language; label ``k`` is ``WORDS[language][k]``."""

SAMPLE_RATE = 8000
"""Sampling rate of the shipped clips and waveforms, in Hz (telephone band, up to 4 kHz)."""

SPECTROGRAM = {"n_mels": 32, "n_fft": 512, "win_length": 400, "hop_length": 240, "fmin": 0.0,
               "fmax": 4000.0, "top_db": 80.0}
"""Spectrogram settings: 50 ms Hann windows every 30 ms; 32 frames cover 0.98 s."""

N_FRAMES = 32
CLIP_SAMPLES = SPECTROGRAM["win_length"] + (N_FRAMES - 1) * SPECTROGRAM["hop_length"]
"""Samples in one clip (7,840 at 8 kHz): exactly :data:`N_FRAMES` frames."""

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "speech"

_SOURCE = (
    "spoken digits synthesized with espeak-ng (GPL-3.0 tool, not needed to load) in many "
    "voices/rates/pitches with added noise; generated data by tlcourse, CC0"
)


def hz_to_mel(f):
    """Frequency in Hz → mel: ``2595 · log10(1 + f / 700)`` (HTK formula).

    >>> round(float(hz_to_mel(1000.0)), 1)
    1000.0
    """
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    """Mel → frequency in Hz: ``700 · (10^(m / 2595) − 1)``, the inverse of :func:`hz_to_mel`.

    >>> round(float(mel_to_hz(hz_to_mel(440.0))), 6)
    440.0
    """
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_frequencies(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """The ``n_mels + 2`` band edges (Hz), equally spaced in mel from ``fmin`` to ``fmax``.

    Filter ``k`` rises from edge ``k`` to its centre, edge ``k + 1``, and falls to edge ``k + 2``.
    """
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))


def mel_filterbank(n_mels: int = 32, n_fft: int = 512, rate: int = SAMPLE_RATE,
                   fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """Triangular mel filters as a matrix ``(n_mels, n_fft // 2 + 1)``.

    With band edges ``e_0 < e_1 < … < e_{n_mels+1}`` equally spaced in mel (see
    :func:`mel_frequencies`), filter ``k`` weighs the FFT bin at frequency ``f`` by

        w_k(f) = max(0, min((f − e_k) / (e_{k+1} − e_k), (e_{k+2} − f) / (e_{k+2} − e_{k+1})))

    a triangle of height 1 peaking at its centre ``e_{k+1}`` (HTK convention, no area
    normalisation). Multiply a power spectrum by it to get mel band energies.

    >>> fb = mel_filterbank(n_mels=32, n_fft=512, rate=8000)
    >>> fb.shape, float(fb.max()) <= 1.0, bool((fb.sum(axis=1) > 0).all())
    ((32, 257), True, True)
    """
    fmax = rate / 2 if fmax is None else fmax
    if n_mels < 1 or n_fft < 2:
        raise ValueError(f"need n_mels >= 1 and n_fft >= 2, got n_mels={n_mels}, n_fft={n_fft}")
    if not 0 <= fmin < fmax <= rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= rate/2 = {rate / 2}, got fmin={fmin}, fmax={fmax}")
    edges = mel_frequencies(n_mels, fmin, fmax)
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / rate)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    fb = np.maximum(0.0, np.minimum(rising, falling))
    if not (fb.sum(axis=1) > 0).all():
        raise ValueError(f"some of the {n_mels} mel filters fall between FFT bins: "
                         f"use fewer mels or a larger n_fft than {n_fft}")
    return fb


def frames(signal: np.ndarray, win_length: int, hop_length: int) -> np.ndarray:
    """Cut a 1-D signal into overlapping frames ``(n_frames, win_length)``, no padding.

    ``n_frames = 1 + (len(signal) − win_length) // hop_length``.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {signal.shape}")
    if len(signal) < win_length:
        raise ValueError(f"waveform has {len(signal)} samples, fewer than one window ({win_length})")
    n = 1 + (len(signal) - win_length) // hop_length
    idx = np.arange(win_length)[None, :] + hop_length * np.arange(n)[:, None]
    return signal[idx]


def log_mel(signal, rate: int = SAMPLE_RATE, n_mels: int = 32, n_fft: int = 512,
            win_length: int = 400, hop_length: int = 240, fmin: float = 0.0,
            fmax: float | None = None, top_db: float | None = 80.0) -> np.ndarray:
    """Log-mel spectrogram in dB, shape ``(n_mels, n_frames)``; row 0 is the lowest band.

    For frame ``t`` (Hann window ``h`` of ``win_length`` samples, every ``hop_length``):

        P_t(f) = |FFT_{n_fft}(h · x_t)(f)|²                       power spectrum
        S[k, t] = 10 · log10(max(Σ_f w_k(f) · P_t(f), 1e-10))     dB, w = :func:`mel_filterbank`

    and with ``top_db`` the result is floored at ``max(S) − top_db``.

    >>> t = np.arange(8000) / 8000
    >>> S = log_mel(np.sin(2 * np.pi * 1000 * t))
    >>> S.shape
    (32, 32)
    """
    if win_length > n_fft:
        raise ValueError(f"win_length ({win_length}) must not exceed n_fft ({n_fft})")
    x = frames(signal, win_length, hop_length) * np.hanning(win_length + 2)[1:-1]
    power = np.abs(np.fft.rfft(x, n=n_fft, axis=1)) ** 2
    mel = mel_filterbank(n_mels, n_fft, rate, fmin, fmax) @ power.T
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    if top_db is not None:
        db = np.maximum(db, db.max() - top_db)
    return db


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; choose one of {LANGUAGES}")
    return language


def data_file(language: str) -> Path:
    """The shipped ``.npz`` of one language."""
    path = DATA_DIR / f"spoken_digits_{_check_language(language)}.npz"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; rebuild it with `python -m tlcourse.datasets.build_speech` "
            "(needs espeak-ng)"
        )
    return path


def _load_npz(language: str) -> dict:
    with np.load(data_file(language), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def build_info(language: str) -> dict:
    """How a language's clips were made: espeak-ng version, voices, rates, pitches, noise, seed."""
    return json.loads(str(_load_npz(language)["meta_json"]))


def split_by_voice(variants, test_size: float = 0.25, seed: int = 0):
    """Boolean test mask that holds out a fraction of the voices (espeak-ng variants).

    Every clip of a held-out voice goes to the test set, so test voices are unseen in
    training. ``round(test_size · n_voices)`` voices are drawn (at least one) with ``seed``.
    """
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be strictly between 0 and 1, got {test_size}")
    variants = np.asarray(variants)
    names = np.unique(variants)
    n_test = min(len(names) - 1, max(1, int(round(test_size * len(names)))))
    test_names = np.random.default_rng(seed).choice(names, size=n_test, replace=False)
    return np.isin(variants, test_names)


def load_spoken_digits(language: str = "en", seed: int = 0, test_size: float = 0.25):
    """Spoken digits 0–9 in one language as an ``ImageSet`` of log-mel spectrograms.

    ``x`` has shape ``(N, 32, 32)`` = (mel bands, frames), row 0 the lowest band, 30 ms per
    frame, float32. Each clip's log-mel dB values ``S`` (see :func:`log_mel`) are scaled as

        x = clip((S − max(S) + 80) / 80, 0, 1)

    so 1 is the loudest cell of that clip and 0 is 80 dB below it (or quieter).
    Labels are the digits (int64); ``classes`` are the words in that language.

    The split is **by voice**: ``test_size`` of the espeak-ng voice variants (chosen with
    ``seed``) are held out, so every test clip is spoken by a voice never heard in training.
    (The accents — ``voice``: en-us, en-gb, … — are shared; the timbres are not.) Every
    language uses the same 36 variants, so one seed holds out the same voices in each
    language: a model moved from English to German meets no test voice it has heard.
    ``extra`` holds per-clip metadata for train and test (``voice``, ``variant``, ``rate``
    in words per minute, ``pitch`` 0–99, ``snr_db``, ``noise`` type, ``band_hz`` of the
    channel filter, 0–0 for none), the spectrogram settings and the build info.

    >>> ds = load_spoken_digits("es", seed=0)            # doctest: +SKIP
    >>> ds.classes[5], ds.x_train.dtype                  # doctest: +SKIP
    ('cinco', dtype('float32'))
    """
    from tlcourse.datasets.base import ImageSet

    _check_language(language)
    z = _load_npz(language)
    db = z["spectrograms"].astype(np.float32)  # dB relative to the clip's maximum, in [-80, 0]
    x = np.clip((db + 80.0) / 80.0, 0.0, 1.0)
    y = z["labels"].astype(np.int64)
    test = split_by_voice(z["variant"], test_size, seed)
    fields = ("voice", "variant", "rate", "pitch", "snr_db", "noise", "band_hz")
    meta = json.loads(str(z["meta_json"]))
    extra = {
        "meta_train": {k: z[k][~test] for k in fields},
        "meta_test": {k: z[k][test] for k in fields},
        "test_voices": sorted(np.unique(z["variant"][test]).tolist()),
        "language": language,
        "sample_rate": SAMPLE_RATE,
        "spectrogram": dict(SPECTROGRAM),
        "normalization": "x = clip((S - max(S) + 80) / 80, 0, 1), S = log-mel dB of the clip",
        "build": meta,
    }
    return ImageSet(
        name="spoken-digits",
        x_train=x[~test], y_train=y[~test], x_test=x[test], y_test=y[test],
        classes=list(WORDS[language]),
        source=_SOURCE,
        extra=extra,
    )


def waveforms(language: str = "en"):
    """One short clip per digit to listen to: ``(rate, {digit: int16 array})``.

    Each is the 0.98 s waveform (8 kHz, with its background noise, peak-normalised) of
    one clip of the data set, one with an SNR of at least 10 dB;
    ``build_info(language)["wave_index"][digit]`` gives its row in the ``.npz``.

    >>> from IPython.display import Audio                # doctest: +SKIP
    >>> rate, waves = waveforms("de")                     # doctest: +SKIP
    >>> Audio(waves[5], rate=rate)                        # doctest: +SKIP
    """
    z = _load_npz(language)
    return int(z["wave_rate"]), {d: z[f"wave_{d}"] for d in range(10)}
