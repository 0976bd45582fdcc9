"""Regenerate the shipped spoken-digit data with espeak-ng (maintainers only).

    python -m tlcourse.datasets.build_speech              # all languages, seed 0
    python -m tlcourse.datasets.build_speech --languages en --out /tmp/speech

Needs the speech synthesizer espeak-ng on ``PATH`` (Debian: ``apt-get install espeak-ng``);
learners never run this: the results ship in ``tlcourse/data/speech/``.

For every language, voice variant (``-v <voice>+<variant>``: timbre, gender, age, the
whisper and creaky voices …), digit and repetition, the script draws at random (NumPy
generator seeded with ``(seed, language)``):

* an accent among the language's espeak-ng voices (English: US, British, Scottish, …),
* a speaking rate (``-s``, words per minute) and a pitch (``-p``, 0–99),
* a microphone-like band-pass channel (or none),
* a background noise — white, pink, brown, hum or babble (time-reversed speech of other
  voices) — at a signal-to-noise ratio in dB, over a faint hiss 45 dB below the speech,
* the word's position in the 0.98 s window (centred, jittered by up to ±0.1 s).

Each clip is resampled to 8 kHz, placed in the window, mixed with the noise at the drawn
SNR, and turned into a 32 × 32 log-mel spectrogram by :func:`tlcourse.datasets.speech.log_mel`,
stored relative to its own maximum (0 dB) with an 80 dB floor, rounded to 1 dB, as
float16 (32 × 32 × 2 bytes a clip; about 0.7 kB compressed). One clip per digit is also kept as an 8 kHz int16 waveform. Everything is
deterministic given ``--seed`` and the espeak-ng version, both recorded in the ``.npz``
(``meta_json``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from scipy.signal import butter, resample_poly, sosfilt

from tlcourse.datasets.speech import (
    CLIP_SAMPLES,
    DATA_DIR,
    LANGUAGES,
    SAMPLE_RATE,
    SPECTROGRAM,
    WORDS,
    log_mel,
)

ACCENTS = {
    "en": ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc"),
    "es": ("es", "es-419"),
    "de": ("de",),
}
"""espeak-ng voices (accents) per language; one is drawn per clip."""

VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "croak", "klatt", "klatt2", "whisperf", "Alex", "Alicia", "Andrea", "Annie", "aunty",
    "belinda", "benjamin", "boris", "caleb", "david", "edward", "grandma", "grandpa", "iven",
    "john", "linda", "max", "quincy", "steph",
)
"""espeak-ng voice variants: the "speakers". The loader splits train/test by variant."""

REPEATS = 3
"""Clips per (variant, digit): 36 variants × 10 digits × 3 = 1,080 clips per language."""

RATE_WPM = (110, 230)
PITCH = (10, 90)
SNR_DB = (-3.0, 18.0)
NOISES = ("white", "pink", "brown", "hum", "babble")
JITTER_S = 0.1
ESPEAK_RATE = 22050  # espeak-ng's native output rate


def espeak_version() -> str:
    """``espeak-ng --version`` (first line), or a clear error if the tool is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng); "
                           "it is needed only to rebuild the shipped data")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[0].split("  Data at")[0].strip()


def synthesize(word: str, voice: str, variant: str, rate: int, pitch: int, tmp: Path) -> np.ndarray:
    """One word from espeak-ng as float64 samples at 8 kHz (peak 1), silence trimmed."""
    wav = tmp / "clip.wav"
    cmd = ["espeak-ng", "-v", f"{voice}+{variant}", "-s", str(rate), "-p", str(pitch),
           "-w", str(wav), word]
    subprocess.run(cmd, check=True, capture_output=True)
    sr, data = wavfile.read(wav)
    if sr != ESPEAK_RATE:
        raise RuntimeError(f"espeak-ng wrote {sr} Hz, expected {ESPEAK_RATE}")
    x = resample_poly(data.astype(np.float64), SAMPLE_RATE, ESPEAK_RATE)  # 8000/22050 = 160/441
    x = trim(x)
    peak = np.abs(x).max()
    if peak == 0:
        raise RuntimeError(f"espeak-ng produced silence for {cmd}")
    return x / peak


def trim(x: np.ndarray, floor_db: float = 40.0, frame: int = 80) -> np.ndarray:
    """Cut leading/trailing silence: keep the 10 ms frames within ``floor_db`` of the loudest."""
    n = len(x) // frame
    energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    db = 10 * np.log10(energy + 1e-20)
    loud = np.flatnonzero(db > db.max() - floor_db)
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def colored_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with power spectrum ∝ 1/f^exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    x = np.fft.irfft(spectrum / f ** (exponent / 2), n)
    return x / np.sqrt(np.mean(x**2))


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz and harmonics with decaying amplitudes, plus a little hiss."""
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.choice([50.0, 60.0])
    x = sum(rng.uniform(0.3, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
            for k in range(1, 16))
    x = x + 0.1 * rng.standard_normal(n)
    return x / np.sqrt(np.mean(x**2))


def babble(n: int, pool: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Three to five voices talking at once, unit RMS: speech-like noise that says no digit.

    Each voice is a chain of time-reversed words from ``pool`` (other speakers), started at
    a random point so that it fills the whole window.
    """
    x = np.zeros(n)
    for _ in range(rng.integers(3, 6)):
        stream = []
        while sum(map(len, stream)) < 2 * n:
            stream.append(pool[rng.integers(len(pool))][::-1] * rng.uniform(0.5, 1.0))
        stream = np.concatenate(stream)
        start = rng.integers(0, len(stream) - n + 1)
        x += stream[start : start + n]
    return x / np.sqrt(np.mean(x**2) + 1e-20)


def channel(x: np.ndarray, band: tuple[float, float] | None) -> np.ndarray:
    """A microphone/telephone-like 2nd-order Butterworth band-pass, or no filter."""
    if band is None:
        return x
    sos = butter(2, band, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return sosfilt(sos, x)


def place(word: np.ndarray, jitter: int) -> np.ndarray:
    """Put a word in a window of ``CLIP_SAMPLES``: centred + ``jitter``, cropped if longer."""
    n = CLIP_SAMPLES
    if len(word) > n:  # very slow speech: keep the middle
        start = (len(word) - n) // 2
        return word[start : start + n].copy()
    out = np.zeros(n)
    start = int(np.clip((n - len(word)) // 2 + jitter, 0, n - len(word)))
    out[start : start + len(word)] = word
    return out


FLOOR_DB = 45.0
"""A faint white hiss this far below the speech under every clip (a recording's noise floor)."""


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float, speech_len: int,
        hiss: np.ndarray) -> np.ndarray:
    """``speech + a · noise + b · hiss``, ``a`` and ``b`` set by signal-to-noise ratios.

    ``10·log10(P_speech / P_noise) = snr_db`` and ``10·log10(P_speech / P_hiss) = FLOOR_DB``,
    with ``P_speech`` the mean power over the word's own samples, not the padded window.
    """
    p_speech = np.sum(speech**2) / max(speech_len, 1)
    a = np.sqrt(p_speech / 10 ** (snr_db / 10) / np.mean(noise**2))
    b = np.sqrt(p_speech / 10 ** (FLOOR_DB / 10) / np.mean(hiss**2))
    return speech + a * noise + b * hiss


def plan(language: str, seed: int) -> list[dict]:
    """Draw every clip's parameters (deterministic given ``seed`` and ``language``)."""
    rng = np.random.default_rng([seed, LANGUAGES.index(language)])
    rows = []
    for variant in VARIANTS:
        for digit in range(10):
            for _ in range(REPEATS):
                band = None
                if rng.random() < 0.5:
                    band = (int(rng.integers(100, 401)), int(rng.integers(2400, 3901)))
                rows.append({
                    "digit": digit,
                    "voice": str(rng.choice(ACCENTS[language])),
                    "variant": variant,
                    "rate": int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
                    "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1)),
                    "noise": str(rng.choice(NOISES)),
                    "snr_db": float(np.round(rng.uniform(*SNR_DB), 1)),
                    "band": band,
                    "jitter": int(rng.integers(-JITTER_S * SAMPLE_RATE, JITTER_S * SAMPLE_RATE + 1)),
                })
    return rows


def build_language(language: str, seed: int, out_dir: Path, log=print) -> Path:
    """Synthesize, mix and save one language's ``spoken_digits_<language>.npz``."""
    rows = plan(language, seed)
    words = WORDS[language]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        clean = [synthesize(words[r["digit"]], r["voice"], r["variant"], r["rate"], r["pitch"],
                            Path(tmp)) for r in rows]
    log(f"  {language}: synthesized {len(rows)} clips in {time.perf_counter() - t0:.1f} s")
    rng = np.random.default_rng([seed, LANGUAGES.index(language), 1])
    specs = np.empty((len(rows), SPECTROGRAM["n_mels"], 32), np.float16)
    mixed = []
    for i, (r, word) in enumerate(zip(rows, clean, strict=True)):
        speech = place(channel(word, r["band"]), r["jitter"])
        n = CLIP_SAMPLES
        kind = r["noise"]
        if kind == "babble":
            others = [clean[j] for j in rng.choice(len(clean), size=24, replace=False)
                      if rows[j]["variant"] != r["variant"]]
            noise = babble(n, others, rng)
        elif kind == "hum":
            noise = hum(n, rng)
        else:
            noise = colored_noise(n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind], rng)
        x = mix(speech, noise, r["snr_db"], min(len(word), n), rng.standard_normal(n))
        db = log_mel(x, **{k: v for k, v in SPECTROGRAM.items()})
        specs[i] = np.round(db - db.max())  # dB below the clip's peak, in 1 dB steps
        mixed.append(x)
    # One listenable clip per digit: the first with a clear SNR (>= 10 dB).
    wave_index = [next(i for i, r in enumerate(rows) if r["digit"] == d and r["snr_db"] >= 10)
                  for d in range(10)]
    waves = {}
    for d, i in enumerate(wave_index):
        w = mixed[i]
        waves[f"wave_{d}"] = np.round(w / np.abs(w).max() * 0.9 * 32767).astype(np.int16)
    meta = {
        "language": language,
        "words": list(words),
        "espeak_ng": espeak_version(),
        "seed": seed,
        "accents": list(ACCENTS[language]),
        "variants": list(VARIANTS),
        "repeats": REPEATS,
        "rate_wpm": list(RATE_WPM),
        "pitch": list(PITCH),
        "snr_db": list(SNR_DB),
        "noises": list(NOISES),
        "hiss_floor_db": FLOOR_DB,
        "channel": "p=0.5 Butterworth(2) band-pass, low 100-400 Hz, high 2400-3900 Hz "
                   "(band_hz; 0, 0 = none)",
        "jitter_s": JITTER_S,
        "sample_rate": SAMPLE_RATE,
        "clip_samples": CLIP_SAMPLES,
        "spectrogram": SPECTROGRAM,
        "storage": "dB relative to the clip maximum, floor -80, 1 dB steps, float16",
        "wave_index": wave_index,
        "generator": "python -m tlcourse.datasets.build_speech",
        "licence": "generated data CC0; espeak-ng (GPL-3.0) used as a tool only",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"spoken_digits_{language}.npz"
    np.savez_compressed(
        path,
        spectrograms=specs,
        labels=np.array([r["digit"] for r in rows], np.int8),
        voice=np.array([r["voice"] for r in rows]),
        variant=np.array([r["variant"] for r in rows]),
        rate=np.array([r["rate"] for r in rows], np.int16),
        pitch=np.array([r["pitch"] for r in rows], np.int16),
        snr_db=np.array([r["snr_db"] for r in rows], np.float32),
        noise=np.array([r["noise"] for r in rows]),
        band_hz=np.array([r["band"] or (0, 0) for r in rows], np.int16),
        wave_rate=np.array(SAMPLE_RATE),
        meta_json=np.array(json.dumps(meta)),
        **waves,
    )
    log(f"  {language}: wrote {path} ({path.stat().st_size / 1e3:.0f} kB) "
        f"in {time.perf_counter() - t0:.1f} s")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", nargs="+", default=list(LANGUAGES), choices=LANGUAGES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    print(f"building spoken digits with {espeak_version()} (seed {args.seed}) into {args.out}")
    for language in args.languages:
        build_language(language, args.seed, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
