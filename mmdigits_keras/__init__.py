"""mmdigits_keras: multimodal (handwritten image + spoken MFCC) digit classification in Keras 3.

    >>> from mmdigits_keras import build_model
    >>> model = build_model(depth=2)        # seed 000's Model 2, 6,766,478 parameters

Public names are imported on first use, so ``mmdigits --help`` starts without TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "MultimodalDataset": "data",
    "load_kaggle": "data",
    "load_khacef": "data",
    "load_dataset": "data",
    "train_val_split": "data",
    "mfcc_507": "features",
    "build_model": "models",
    "MODEL_CONFIGS": "registry",
    "create_model": "registry",
    "list_models": "registry",
    "train": "training",
    "fit_audio_statistics": "training",
    "load_trained_model": "training",
    "classification_metrics": "training",
    "predict_labels": "submission",
    "make_submission": "submission",
    "validate_submission": "submission",
    "write_submission": "submission",
    "submit": "submission",
    "build_demo_data": "demo",
    "build_retrieval_model": "retrieval",
    "train_retrieval": "retrieval",
    "evaluate_retrieval": "retrieval_eval",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mmdigits_keras' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mmdigits_keras.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
