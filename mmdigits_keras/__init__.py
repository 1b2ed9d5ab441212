"""mmdigits_keras: multimodal (handwritten image + spoken MFCC) digit classification in Keras 3.

    >>> from mmdigits_keras import build_model
    >>> model = build_model(depth=2)        # seed 000's Model 2, 6,766,478 parameters

The package is layered, imports running one way (docs/architecture.md):
``utils`` -> ``data`` -> ``models`` -> ``training`` -> ``tuning`` | ``evaluation`` |
``submission`` -> ``workflows`` -> ``cli``. Public names are imported on first use, so
``mmdigits --help`` starts without TensorFlow.
"""

import importlib.util

from mmdigits_keras.utils.lazy import lazy_exports

# TensorFlow is not a hard requirement of the distribution (setup.cfg: notebooks bring their
# own); without one, say what to install instead of failing deep inside keras.
if importlib.util.find_spec("tensorflow") is None:
    raise ImportError("mmdigits_keras needs TensorFlow and none is installed: pip install 'mmdigits_keras[cpu]' "
                      "(or '[gpu]'); Kaggle and Colab notebooks already have it")

__version__ = "0.2.0"

_EXPORTS = {
    "MultimodalDataset": "data.layouts",
    "load_kaggle": "data.layouts",
    "load_khacef": "data.layouts",
    "load_dataset": "data.layouts",
    "train_val_split": "data.splits",
    "fold_rows": "data.splits",
    "mfcc_507": "data.features",
    "fit_audio_statistics": "data.features",
    "build_demo_data": "data.demo",
    "build_dataset": "data.build",
    "write_synthetic_recordings": "data.demo",
    "build_model": "models",
    "MODEL_CONFIGS": "models",
    "create_model": "models",
    "create_backbone": "models",
    "list_models": "models",
    "model_info": "models",
    "register_model": "models",
    "get_backbone": "models",
    "feature_extractor": "models",
    "train": "training",
    "TrainingSettings": "training",
    "train_retrieval": "training",
    "build_retrieval_model": "training",
    "load_trained_model": "training",
    "load_ensemble": "training",
    "ensemble_model": "models",
    "classification_metrics": "training",
    "predict_labels": "training",
    "get_recipe": "training",
    "run_search": "tuning",
    "load_search": "tuning",
    "make_submission": "submission",
    "validate_submission": "submission",
    "write_submission": "submission",
    "submit": "submission",
    "evaluate": "evaluation",
    "compare": "evaluation",
    "query": "evaluation",
    "evaluate_retrieval": "evaluation",
    "write_report": "evaluation",
    "run_demo": "workflows",
    "export_model": "export",
    "predict_tflite": "export",
    "load_tflite": "export",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
