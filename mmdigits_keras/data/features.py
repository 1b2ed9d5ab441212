"""Audio features: the Khacef et al. (2019) MFCC recipe, 39 frames x 13 values per second.

The Written and Spoken Digits database (Khacef, Rodriguez, Miramond 2019, zenodo 3515935)
describes each utterance by 12 MFCC cepstra plus log energy over 50 ms windows with a 25 ms
shift, on a clip of 1 s: 39 frames x 13 = 507 values. The Kaggle course data (Nippani Ravi) and
Tseng's report use the same 507-value layout, flattened frame by frame.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import python_speech_features
from scipy.signal import firwin, resample_poly

from mmdigits_keras.data.constants import FEATURE_KINDS, NUM_COEFFICIENTS, NUM_FRAMES, NUM_MEL_BANDS

WINDOW_SECONDS = 0.050
HOP_SECONDS = 0.025
CLIP_SECONDS = 1.0
DITHER = 1e-4
# Every recording is brought to one rate first, so the mel filters span the same band for
# any source. 8 kHz is FSDD's rate (and the shared sample data's); it holds the speech band.
SAMPLE_RATE = 8000


def _as_mono_float(wave, sample_rate):
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1000:
        raise ValueError(
            f"`sample_rate` must be an integer number of Hz >= 1000. Received: sample_rate={sample_rate!r}"
        )
    wave = np.asarray(wave)
    if wave.ndim == 2:  # (samples, channels), as scipy.io.wavfile returns stereo
        wave = wave.mean(axis=1)
    if wave.ndim != 1:
        raise ValueError(
            f"`wave` must have shape (samples,) or (samples, channels). Received shape {wave.shape}"
        )
    if wave.size == 0:
        raise ValueError("`wave` is empty (0 samples)")
    if not np.issubdtype(wave.dtype, np.number):
        raise ValueError(f"`wave` must be numeric. Received dtype {wave.dtype}")
    wave = wave.astype(np.float64)
    if not np.all(np.isfinite(wave)):
        raise ValueError("`wave` contains NaN or inf")
    return wave


def resample(wave, sample_rate, target=SAMPLE_RATE):
    """Resamples a 1-D float wave from `sample_rate` to `target` Hz (polyphase, anti-aliased).

    Returns the wave unchanged when the rates are equal.
    """
    if sample_rate == target:
        return wave
    common = math.gcd(int(sample_rate), int(target))
    up, down = target // common, int(sample_rate) // common
    return resample_poly(wave, up, down, window=_antialiasing_filter(up, down))


@functools.lru_cache(maxsize=16)
def _antialiasing_filter(up, down):
    """The low-pass FIR filter `resample_poly` designs by default (Kaiser window, beta 5), made
    once per rate pair: designing it took most of the resampling time of a 2,000-clip corpus."""
    rate = max(up, down)
    return firwin(2 * 10 * rate + 1, 1.0 / rate, window=("kaiser", 5.0))


def centre_clip(wave, sample_rate, *, seed=0):
    """Peak-normalizes a waveform and centres it in a clip of exactly 1 s.

    Args:
        wave: 1-D array of samples (any numeric dtype), or (samples, channels), which is
            averaged to mono.
        sample_rate: Sampling rate in Hz (int, >= 1000).
        seed: Seed of the dither noise added to the whole clip, so silence has a finite log
            energy. Fixed by default so the features are deterministic.

    Returns:
        float64 array of shape (sample_rate,), peak amplitude 1 (plus a 1e-4 dither).
        Longer recordings are cropped around their centre; shorter ones zero-padded on both
        sides.

    Raises:
        ValueError: if `wave` is empty, not numeric, has NaN/inf or more than 2 dimensions,
            or `sample_rate` is not an integer >= 1000.
    """
    wave = _as_mono_float(wave, sample_rate)
    peak = np.max(np.abs(wave))
    if peak > 0:
        wave = wave / peak
    target = int(round(CLIP_SECONDS * sample_rate))
    if wave.size >= target:
        start = (wave.size - target) // 2
        clip = wave[start : start + target]
    else:
        clip = np.zeros(target)
        start = (target - wave.size) // 2
        clip[start : start + wave.size] = wave
    rng = np.random.default_rng(seed)
    return clip + DITHER * rng.standard_normal(target)


def _framing(wave, sample_rate):
    """Resampled, centred clip and the FFT size of the shared framing (50 ms / 25 ms)."""
    wave = resample(_as_mono_float(wave, sample_rate), sample_rate)
    clip = centre_clip(wave, SAMPLE_RATE)
    window = int(round(WINDOW_SECONDS * SAMPLE_RATE))
    return clip, 1 << (window - 1).bit_length()  # the whole window fits in the FFT


def logmel_frames(wave, sample_rate):
    """Log-mel energies with the framing of `mfcc_507`: (39 frames, 40 bands).

    Same resampling (8 kHz), peak normalization, 1 s centring, 50 ms windows every 25 ms and
    pre-emphasis as `mfcc_507`; 40 triangular mel bands from 0 to 4 kHz, natural log.

    Args:
        wave: 1-D samples (any numeric dtype) or (samples, channels).
        sample_rate: Sampling rate in Hz (>= 1000).

    Returns:
        float32 array (39, 40); flatten frame by frame for the 1,560-value row.

    Raises:
        ValueError: as `mfcc_507`.

    Reference:
        Pragadaraju and Shah classify spectrogram images; this is the usual log-mel form of that input.
    """
    clip, nfft = _framing(wave, sample_rate)
    features = python_speech_features.logfbank(
        clip, samplerate=SAMPLE_RATE, winlen=WINDOW_SECONDS, winstep=HOP_SECONDS,
        nfilt=NUM_MEL_BANDS, nfft=nfft)
    return features.astype(np.float32)


def speech_features(wave, sample_rate, kind="mfcc"):
    """`mfcc_507` (``kind="mfcc"``, (39, 13)) or `logmel_frames` (``"logmel"``, (39, 40)).

    Raises:
        ValueError: an unknown `kind`, or a bad wave (see `mfcc_507`).
    """
    if kind not in FEATURE_KINDS:
        raise ValueError(f"`kind` must be one of {list(FEATURE_KINDS)}. Received: kind={kind!r}")
    return (mfcc_507 if kind == "mfcc" else logmel_frames)(wave, sample_rate)


def mfcc_507(wave, sample_rate):
    """Computes the Khacef et al. (2019) MFCC features of one spoken digit.

    The recipe: resample to 8 kHz, peak-normalize, centre in 1 s (crop or zero-pad, 1e-4 dither), frame with a
    50 ms rectangular window every 25 ms, 26 mel filters, 12 cepstra (c1..c12) plus the log
    frame energy in place of c0, pre-emphasis 0.97 and cepstral lifter 22 (the
    python_speech_features defaults). On the FSDD recordings this reproduces the speech
    features of ``../shared/data/kaggle_sample`` (correlation 1.00 on the voiced frames).

    Args:
        wave: 1-D array of samples, any numeric dtype and scale (int16 PCM, float in [-1, 1],
            ...), or (samples, channels) which is averaged to mono.
        sample_rate: Sampling rate in Hz (>= 1000); the wave is first resampled to 8 kHz
            (`SAMPLE_RATE`), so every source gives comparable features.

    Returns:
        float32 array of shape (39, 13): frames x (log energy, c1..c12). Flatten it frame by
        frame (``.reshape(-1)``) for the 507-value vector of the Kaggle and Khacef layouts.

    Raises:
        ValueError: on an empty, non-numeric or non-finite wave, or a bad sample rate.

    Reference:
        Khacef, Rodriguez, Miramond, "Written and spoken digits database for multimodal
        learning", 2019 (zenodo 3515935); Nippani Ravi and Tseng use its 507-value features.
    """
    clip, nfft = _framing(wave, sample_rate)
    features = python_speech_features.mfcc(
        clip,
        samplerate=SAMPLE_RATE,
        winlen=WINDOW_SECONDS,
        winstep=HOP_SECONDS,
        numcep=NUM_COEFFICIENTS,
        nfft=nfft,
        appendEnergy=True,
    )
    if features.shape != (NUM_FRAMES, NUM_COEFFICIENTS):  # pragma: no cover - recipe invariant
        raise AssertionError(f"MFCC recipe produced shape {features.shape}")
    return features.astype(np.float32)


def fit_audio_statistics(audio):
    """Per-column mean and variance of training speech features, for a model's built-in
    standardization (fitted on training rows only, docs/data.md, "Speech features").

    Args:
        audio: float array (N, 507) (or (N, 1560) log-mel) of training rows only.

    Returns:
        (mean, variance): two float32 arrays of shape (columns,).
    """
    audio = np.asarray(audio, dtype=np.float64)
    return audio.mean(axis=0).astype(np.float32), audio.var(axis=0).astype(np.float32)
