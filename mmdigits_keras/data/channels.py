"""Recording conditions and wave-level augmentation for `data build`.

Channels simulate another microphone, line or room for the *test* recordings of a build
(the robustness benchmark's channel-shift conditions):

- ``telephone``: 4th-order Butterworth band-pass 300-3400 Hz (the ITU-T G.712 voice band);
- ``gain+12`` / ``gain-12``: level change by +/-12 dB, then saturation at the recording's full
  scale and requantization to its integer grid (the features peak-normalize every clip, so a
  gain changes them only through clipping and quantization);
- ``noise20`` / ``noise10``: additive white Gaussian noise at 20 / 10 dB SNR (signal power over
  the whole recording);
- ``room``: a shoebox room (6 x 5 x 3 m, RT60 0.5 s, source-microphone distance ~2.2 m)
  simulated with pyroomacoustics' image-source method; the recording keeps its 0.5 s tail.

Speed perturbation (Ko et al., "Audio augmentation for speech recognition", Interspeech 2015)
resamples a recording by a factor (0.9: slower and lower, 1.1: faster and higher), which
changes duration, pitch and formants together.
"""

from __future__ import annotations

import functools
import math
import zlib

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfiltfilt

from mmdigits_keras.data.constants import CHANNELS
from mmdigits_keras.utils.extras import optional_module

pra = optional_module("pyroomacoustics")

TELEPHONE_BAND_HZ = (300.0, 3400.0)
ROOM = {"size_m": (6.0, 5.0, 3.0), "rt60_s": 0.5, "source_m": (2.0, 3.5, 1.6), "microphone_m": (3.5, 2.0, 1.2)}


def check_channel(channel):
    """Raises ValueError unless `channel` is None or one of `CHANNELS`."""
    if channel is not None and channel not in CHANNELS:
        raise ValueError(f"`channel` must be one of {list(CHANNELS)}. Received: channel={channel!r}")


@functools.lru_cache(maxsize=4)
def room_impulse_response(sample_rate):
    """The `ROOM` impulse response at `sample_rate` Hz, float64 (taps,), peak 1."""
    absorption, max_order = pra.inverse_sabine(ROOM["rt60_s"], ROOM["size_m"])
    room = pra.ShoeBox(ROOM["size_m"], fs=int(sample_rate), materials=pra.Material(absorption),
                       max_order=max_order)
    room.add_source(list(ROOM["source_m"]))
    room.add_microphone(list(ROOM["microphone_m"]))
    room.compute_rir()
    response = np.asarray(room.rir[0][0], dtype=np.float64)
    return response / np.max(np.abs(response))


def _full_scale(wave):
    """Largest magnitude of the recording's format (read_wav keeps integer PCM's numbers)."""
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    for bits in (8, 16, 24, 32):
        limit = 2.0 ** (bits - 1)
        if peak <= limit:
            return limit if peak > 1.0 else 1.0
    return peak


def apply_channel(wave, sample_rate, channel, *, seed=0, key=""):
    """Passes one recording through a simulated channel (see the module docstring).

    Args:
        wave: float array (samples,) or (samples, channels), as `read_wav` returns it (integer
            PCM keeps its numbers, float stays in [-1, 1]); multi-channel is averaged to mono.
        sample_rate: Rate in Hz (int > 0).
        channel: One of `CHANNELS`, or None for the recording as it is.
        seed: Seed of the noise channels.
        key: Text that makes the noise differ per recording (e.g. its file name).

    Returns:
        float64 (samples,) on the same scale as `wave`.

    Raises:
        ValueError: an unknown `channel`, or a band edge at or above the Nyquist frequency.
    """
    check_channel(channel)
    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if channel is None:
        return wave
    if channel == "telephone":
        if TELEPHONE_BAND_HZ[1] >= sample_rate / 2:
            raise ValueError(f"telephone channel needs a rate above {2 * TELEPHONE_BAND_HZ[1]:.0f} Hz "
                             f"(received {sample_rate} Hz)")
        sos = butter(4, TELEPHONE_BAND_HZ, btype="bandpass", fs=sample_rate, output="sos")
        return sosfiltfilt(sos, wave)
    if channel.startswith("gain"):
        limit = _full_scale(wave)
        scaled = np.clip(wave * 10 ** (float(channel[4:]) / 20), -limit, limit)
        return np.round(scaled) if limit > 1.0 else scaled
    if channel.startswith("noise"):
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        power = float(np.mean(wave**2))
        return wave + math.sqrt(power / 10 ** (float(channel[5:]) / 10)) * rng.standard_normal(wave.size)
    response = room_impulse_response(int(sample_rate))
    onset = int(np.argmax(np.abs(response)))  # the direct path's delay
    # Kept: the recording plus the audible tail (60 dB of decay take RT60), aligned with the
    # dry recording. The image-source response runs on far below that; keeping all of it would
    # move the 1 s window of the features off the speech, which no recorder does.
    reverberant = fftconvolve(wave, response)[onset : onset + wave.size + int(ROOM["rt60_s"] * sample_rate)]
    return reverberant * (np.max(np.abs(wave)) / max(np.max(np.abs(reverberant)), 1e-12))


def speed_perturb(wave, factor):
    """Speed perturbation: `wave` (samples,) played `factor` times faster (factor in [0.5, 2]),
    by polyphase resampling; duration / factor, pitch and formants x factor."""
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed `factor` must be in [0.5, 2]. Received: factor={factor!r}")
    if factor == 1.0:
        return np.asarray(wave, dtype=np.float64)
    return resample_poly(np.asarray(wave, dtype=np.float64), *_ratio(factor))


def _ratio(factor, denominator=100):
    """(up, down) with up / down ~ 1 / factor, reduced."""
    up, down = denominator, int(round(factor * denominator))
    common = math.gcd(up, down)
    return up // common, down // common
