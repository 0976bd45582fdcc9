"""Spoken digits: the shipped spectrograms, the voice split, the mel helpers, the build steps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tlcourse import datasets
from tlcourse.datasets import build_speech, speech
from tlcourse.datasets.speech import LANGUAGES, WORDS, load_spoken_digits


@pytest.mark.parametrize("language", LANGUAGES)
def test_shapes_dtypes_ranges(language):
    ds = load_spoken_digits(language)
    assert ds.name == "spoken-digits" and ds.extra["language"] == language
    assert ds.classes == list(WORDS[language])
    assert ds.x_train.dtype == np.float32 and ds.x_train.shape[1:] == (32, 32)
    assert ds.x_test.shape[1:] == (32, 32) and ds.y_train.dtype == np.int64
    for x in (ds.x_train, ds.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert np.allclose(x.reshape(len(x), -1).max(axis=1), 1.0)  # each clip's peak is 1
    assert 600 <= len(ds.y_train) + len(ds.y_test) <= 1500
    assert np.bincount(ds.y_train, minlength=10).min() > 0
    assert np.bincount(ds.y_test, minlength=10).min() > 0
    assert "espeak-ng" in ds.source and "CC0" in ds.source
    assert ds.extra["build"]["espeak_ng"].startswith("eSpeak NG")


def test_split_is_by_voice_and_deterministic():
    a, b = load_spoken_digits("en", seed=3), load_spoken_digits("en", seed=3)
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    train_voices = set(a.extra["meta_train"]["variant"])
    test_voices = set(a.extra["meta_test"]["variant"])
    assert train_voices.isdisjoint(test_voices)
    assert test_voices == set(a.extra["test_voices"])
    n_voices = len(train_voices | test_voices)
    assert len(test_voices) == round(0.25 * n_voices)
    other = load_spoken_digits("en", seed=4)
    assert set(other.extra["test_voices"]) != test_voices
    half = load_spoken_digits("en", seed=3, test_size=0.5)
    assert len(half.extra["test_voices"]) == round(0.5 * n_voices)
    # The same seed holds out the same voices in every language (for transfer across them).
    assert load_spoken_digits("de", seed=3).extra["test_voices"] == a.extra["test_voices"]


def test_normalization_maps_minus_80_db_to_0_and_the_peak_to_1():
    ds = load_spoken_digits("de", seed=2)
    raw = speech._load_npz("de")
    test = speech.split_by_voice(raw["variant"], 0.25, seed=2)
    db = raw["spectrograms"][~test].astype(np.float32)  # dB below each clip's peak
    assert db.max() == 0.0 and db.min() >= -80.0
    assert np.allclose(ds.x_train, (db + 80.0) / 80.0)
    assert np.array_equal(ds.y_train, raw["labels"][~test])


def test_metadata_is_aligned_with_the_clips():
    ds = load_spoken_digits("es")
    meta = ds.extra["meta_train"]
    for key in ("voice", "variant", "rate", "pitch", "snr_db", "noise", "band_hz"):
        assert len(meta[key]) == len(ds.y_train), key
    assert set(meta["voice"]) <= set(build_speech.ACCENTS["es"])
    assert set(meta["noise"]) <= set(build_speech.NOISES)
    lo, hi = build_speech.RATE_WPM
    assert lo <= meta["rate"].min() and meta["rate"].max() <= hi


@pytest.mark.parametrize("language", LANGUAGES)
def test_waveforms_match_their_spectrograms(language):
    rate, waves = speech.waveforms(language)
    assert rate == speech.SAMPLE_RATE and sorted(waves) == list(range(10))
    raw = speech._load_npz(language)
    for digit, i in enumerate(speech.build_info(language)["wave_index"]):
        w = waves[digit]
        assert w.dtype == np.int16 and len(w) == speech.CLIP_SAMPLES and np.abs(w).max() > 20000
        assert raw["labels"][i] == digit
        db = speech.log_mel(w.astype(np.float64), rate, **speech.SPECTROGRAM)
        assert np.abs((db - db.max()) - raw["spectrograms"][i]).max() < 1.0


def test_mel_scale_formula():
    assert speech.hz_to_mel(0.0) == 0.0
    assert abs(float(speech.hz_to_mel(1000.0)) - 2595 * np.log10(1 + 1000 / 700)) < 1e-9
    f = np.array([50.0, 440.0, 3999.0])
    assert np.allclose(speech.mel_to_hz(speech.hz_to_mel(f)), f)


def test_mel_filterbank_triangles():
    fb = speech.mel_filterbank(n_mels=32, n_fft=512, rate=8000)
    assert fb.shape == (32, 257) and fb.min() >= 0 and fb.max() <= 1
    centres = speech.mel_frequencies(32, 0.0, 4000.0)[1:-1]
    peaks = np.fft.rfftfreq(512, 1 / 8000)[fb.argmax(axis=1)]
    assert np.all(np.abs(peaks - centres) <= 8000 / 512)  # peak within one FFT bin of the centre
    assert np.all(np.diff(centres) > 0) and np.all(np.diff(np.diff(centres)) > 0)  # wider up high
    with pytest.raises(ValueError, match="fmin"):
        speech.mel_filterbank(fmin=100, fmax=5000, rate=8000)
    with pytest.raises(ValueError, match="between FFT bins"):
        speech.mel_filterbank(n_mels=128, n_fft=64, rate=8000)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0])
def test_log_mel_of_a_sine_peaks_at_its_mel_band(freq):
    t = np.arange(8000) / 8000
    db = speech.log_mel(np.sin(2 * np.pi * freq * t))
    assert db.shape == (32, 1 + (8000 - 400) // 240)
    centres = speech.mel_frequencies(32, 0.0, 4000.0)[1:-1]
    assert db.mean(axis=1).argmax() == np.abs(centres - freq).argmin()
    assert db.max() - db.min() <= 80.0 + 1e-9  # top_db floor
    quiet = speech.log_mel(0.01 * np.sin(2 * np.pi * freq * t), top_db=None)
    assert np.allclose(db.max() - quiet.max(), 40.0, atol=1e-6)  # 20·log10(100) dB


def test_frames_and_bad_waveforms():
    f = speech.frames(np.arange(10.0), win_length=4, hop_length=3)
    assert f.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    with pytest.raises(ValueError, match="1-D"):
        speech.log_mel(np.zeros((2, 8000)))
    with pytest.raises(ValueError, match="fewer than one window"):
        speech.log_mel(np.zeros(100))


def test_bad_language_and_test_size():
    with pytest.raises(ValueError, match=r"'en', 'es', 'de'"):
        load_spoken_digits("fr")
    with pytest.raises(ValueError, match="choose one of"):
        speech.waveforms("klingon")
    with pytest.raises(ValueError, match="test_size"):
        load_spoken_digits("en", test_size=1.0)


def test_registry_loads_spoken_digits():
    ds = datasets.load("spoken-digits", language="de", seed=1)
    assert ds.classes[5] == "fünf" and ds.x_train.shape[1:] == (32, 32)


def test_loads_without_espeak_ng(tmp_path):
    """A learner's machine without espeak-ng on PATH reads the shipped files."""
    code = (
        "import shutil, sys\n"
        "assert shutil.which('espeak-ng') is None\n"
        "from tlcourse.datasets.speech import load_spoken_digits, waveforms\n"
        "ds = load_spoken_digits('es'); rate, w = waveforms('es')\n"
        "bad = [m for m in ('torch', 'tensorflow') if m in sys.modules]\n"
        "assert not bad and ds.x_train.shape[1:] == (32, 32) and len(w) == 10\n"
    )
    env = {**os.environ, "PATH": str(tmp_path), "TLCOURSE_HOME": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env,
                   cwd=Path(__file__).resolve().parent.parent)


def test_data_files_are_small():
    files = sorted(speech.DATA_DIR.glob("spoken_digits_*.npz"))
    assert [f.stem.rsplit("_", 1)[1] for f in files] == sorted(LANGUAGES)
    assert sum(f.stat().st_size for f in files) < 3.2e6


# ----------------------------------------------------------------------------- build steps


def test_plan_is_deterministic_and_balanced():
    a, b = build_speech.plan("de", seed=0), build_speech.plan("de", seed=0)
    assert a == b and a != build_speech.plan("de", seed=1)
    assert len(a) == len(build_speech.VARIANTS) * 10 * build_speech.REPEATS
    assert np.bincount([r["digit"] for r in a]).tolist() == [len(a) // 10] * 10


def test_mix_reaches_the_requested_snr():
    rng = np.random.default_rng(0)
    n = speech.CLIP_SAMPLES
    word = np.sin(np.arange(3000) / 5.0)
    clip = build_speech.place(word, jitter=0)
    assert np.count_nonzero(clip) == np.count_nonzero(word)
    noise = build_speech.colored_noise(n, 1.0, rng)
    hiss = build_speech.colored_noise(n, 0.0, rng)
    out = build_speech.mix(clip, noise, 6.0, len(word), hiss)
    p_speech = np.sum(clip**2) / len(word)  # over the word, not the padded window
    p_noise = np.mean((out - clip) ** 2)  # noise at 6 dB + hiss at FLOOR_DB, nearly independent
    expected = -10 * np.log10(10 ** -0.6 + 10 ** (-build_speech.FLOOR_DB / 10))
    assert abs(10 * np.log10(p_speech / p_noise) - expected) < 0.02


def test_place_centres_and_crops():
    n = speech.CLIP_SAMPLES
    mid = build_speech.place(np.ones(1000), jitter=0)
    first = np.flatnonzero(mid)[0]
    assert first == (n - 1000) // 2
    assert np.flatnonzero(build_speech.place(np.ones(1000), jitter=10**6))[-1] == n - 1
    assert len(build_speech.place(np.ones(n + 500), jitter=0)) == n


def test_colored_noise_slopes():
    rng = np.random.default_rng(1)
    slopes = []
    for exponent in (0.0, 1.0, 2.0):
        x = build_speech.colored_noise(2**15, exponent, rng)
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(len(x))
        keep = (f > 0.001) & (f < 0.4)
        slopes.append(np.polyfit(np.log(f[keep]), np.log(p[keep]), 1)[0])
    assert np.allclose(slopes, [0.0, -1.0, -2.0], atol=0.15)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_synthesize_one_word(tmp_path):
    x = build_speech.synthesize("seven", "en-us", "f3", 175, 50, tmp_path)
    assert 0.2 * speech.SAMPLE_RATE < len(x) < 1.2 * speech.SAMPLE_RATE
    assert np.isclose(np.abs(x).max(), 1.0)
