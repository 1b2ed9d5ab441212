"""The data layer: the dataset container, safe file readers, the layouts, grouped validation
splits, speech features, wav and image sources, data-set building, the embedded demo data and
eSpeak NG synthesis.

Public names load on first use (PEP 562), so ``mmdigits_keras.data.constants`` -- what the
models need -- does not pull in pandas or the audio stack.
"""

from mmdigits_keras.utils.lazy import lazy_exports

_EXPORTS = {
    "MultimodalDataset": "dataset",
    "load_kaggle": "layouts",
    "load_khacef": "layouts",
    "load_dataset": "layouts",
    "detect_layout": "layouts",
    "read_label_csv": "readers",
    "train_val_split": "splits",
    "fold_rows": "splits",
    "resolve_split": "splits",
    "SPLITS": "splits",
    "read_groups": "groups",
    "write_groups": "groups",
    "fit_audio_statistics": "features",
    "mfcc_507": "features",
    "speech_features": "features",
    "build_dataset": "build",
    "pair_by_digit": "build",
    "read_wav": "sources",
    "load_image_pools": "sources",
    "build_demo_data": "demo",
    "write_synthetic_recordings": "demo",
    "mix_synthetic_speech": "mixing",
    "apply_channel": "channels",
    "speed_perturb": "channels",
    "CHANNELS": "constants",
    "IMAGE_SHAPE": "constants",
    "NUM_CLASSES": "constants",
    "NUM_FEATURES": "constants",
    "NUM_FRAMES": "constants",
    "AUDIO_WIDTHS": "constants",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
