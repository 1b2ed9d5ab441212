"""Offline speech synthesis with eSpeak NG, driven through ctypes (no network, no audio device).

The ``espeakng-loader`` wheel ships ``libespeak-ng`` and its voice data; this module calls the
public C API of ``speak_lib.h`` in synchronous mode and collects the samples the callback
receives. eSpeak keeps global state, so one process holds one initialized engine.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile
import threading

import espeakng_loader
import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PARAM_RATE = 1
_PARAM_PITCH = 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

# Variants whose output is the same in every fresh process (measured: +f2, +f3, +f5, +croak
# and +whisper add noise that differs from run to run, so they are left out).
DETERMINISTIC_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f4")


class ESpeak:
    """A synchronous eSpeak NG engine that returns waveforms as numpy arrays.

    Example:
        >>> engine = ESpeak()
        >>> wave = engine.synthesize("seven", voice="en-us+f2", rate=160, pitch=50)
        >>> wave.dtype, engine.sample_rate
        (dtype('int16'), 22050)
    """

    _lock = threading.Lock()
    _instance_state = None  # (library, sample_rate, callback, buffer) shared per process

    def __init__(self):
        with ESpeak._lock:
            if ESpeak._instance_state is None:
                library = ctypes.CDLL(espeakng_loader.get_library_path())
                library.espeak_Initialize.restype = ctypes.c_int
                library.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
                library.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
                library.espeak_SetVoiceByName.restype = ctypes.c_int
                library.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
                library.espeak_Synth.argtypes = [
                    ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                    ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
                ]
                data_path = espeakng_loader.get_data_path().encode()
                sample_rate = library.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
                if sample_rate <= 0:
                    raise RuntimeError(f"eSpeak NG failed to initialize (returned {sample_rate})")
                chunks: list[np.ndarray] = []

                def collect(wav, numsamples, events):
                    if numsamples > 0:
                        chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
                    return 0

                callback = _CALLBACK(collect)  # kept referenced: C holds only the pointer
                library.espeak_SetSynthCallback(callback)
                ESpeak._instance_state = (library, sample_rate, callback, chunks)
        self._library, self.sample_rate, _, self._chunks = ESpeak._instance_state

    def synthesize(self, text, *, voice="en", rate=175, pitch=50):
        """Speaks `text` and returns the waveform.

        Args:
            text: What to say (str).
            voice: eSpeak voice name with optional variant, e.g. ``"en-us+f2"``,
                ``"en-gb-scotland+m3"``.
            rate: Speaking rate in words per minute (80..450).
            pitch: Base pitch, 0..100.

        Returns:
            int16 array of shape (samples,) at ``self.sample_rate`` Hz (22,050).

        Raises:
            ValueError: if eSpeak does not know `voice` or produced no samples.
        """
        with ESpeak._lock:
            if self._library.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            self._library.espeak_SetParameter(_PARAM_RATE, int(rate), 0)
            self._library.espeak_SetParameter(_PARAM_PITCH, int(pitch), 0)
            encoded = text.encode()
            self._chunks.clear()
            self._library.espeak_Synth(encoded, len(encoded) + 1, 0, 0, 0, 0, None, None)
            self._library.espeak_Synchronize()
            if not self._chunks:
                raise ValueError(f"eSpeak NG produced no audio for {text!r} with voice {voice!r}")
            return np.concatenate(self._chunks)


def synthesize_batch(requests):
    """Synthesizes many utterances in a fresh process, so the result never depends on history.

    eSpeak NG's voice generator keeps state across utterances (its pitch flutter runs on), so
    the same request gives slightly different samples depending on what was spoken before
    in the process. Running the whole batch in a new interpreter makes it reproducible.

    Args:
        requests: list of dicts with keys ``text``, ``voice``, ``rate``, ``pitch``
            (see `ESpeak.synthesize`).

    Returns:
        (waves, sample_rate): a list of int16 arrays, one per request, and the rate in Hz.

    Raises:
        RuntimeError: if the synthesis process fails (its stderr is included).
    """
    with tempfile.TemporaryDirectory(prefix="mmdigits-espeak-") as tmp:
        request_path = os.path.join(tmp, "requests.json")
        result_path = os.path.join(tmp, "waves.npz")
        with open(request_path, "w") as f:
            json.dump(list(requests), f)
        # Run this file as a script: it imports only numpy, not the package (and TensorFlow).
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), request_path, result_path],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"eSpeak NG synthesis failed: {done.stderr.strip()[-2000:]}")
        with np.load(result_path, allow_pickle=False) as data:
            sample_rate = int(data["sample_rate"])
            waves = [data[f"w{i}"] for i in range(len(data.files) - 1)]
    return waves, sample_rate


def _main(request_path, result_path):
    with open(request_path) as f:
        requests = json.load(f)
    engine = ESpeak()
    waves = {f"w{i}": engine.synthesize(r["text"], voice=r["voice"], rate=r["rate"], pitch=r["pitch"])
             for i, r in enumerate(requests)}
    np.savez(result_path, sample_rate=np.int64(engine.sample_rate), **waves)


if __name__ == "__main__":
    _main(*sys.argv[1:3])
