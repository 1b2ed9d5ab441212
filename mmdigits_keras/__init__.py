"""mmdigits_keras: multimodal (handwritten image + spoken MFCC) digit classification in Keras 3.

    >>> from mmdigits_keras import build_model, train, submit
    >>> model = build_model(depth=2)        # Model 2 of the late-fusion family, 6,766,478 parameters
    >>> run = train("data/kaggle", out="runs/default")
    >>> submit(run, "data/kaggle", "submissions/default.csv")

The package is layered, imports running one way (docs/architecture.md):
``utils`` -> ``data`` -> ``models`` -> ``training`` -> ``tuning`` | ``evaluation`` |
``submission`` | ``export`` -> ``workflows`` -> ``cli``. `__all__` is the public API (builders, registry,
loaders, train, search, submit, evaluate, export); the rest is imported from its subpackage.
Public names are imported on first use, so ``mmdigits --help`` starts without Keras's backend.
It runs on each of Keras's backends, TensorFlow, JAX or PyTorch: ``KERAS_BACKEND`` picks, as
Keras itself does.
"""

import importlib.util

from mmdigits_keras.utils.defaults import BACKENDS
from mmdigits_keras.utils.lazy import lazy_exports
from mmdigits_keras.utils.quiet import quiet_tensorflow

# No backend is a hard requirement of the distribution (setup.cfg: notebooks bring their own);
# without any, say what to install instead of failing deep inside keras.
if not any(importlib.util.find_spec(name) for name in BACKENDS):
    raise ImportError("mmdigits_keras needs one of Keras's backends and none is installed: pip install "
                      "'mmdigits_keras[cpu]' (TensorFlow), 'mmdigits_keras[jax]' or 'mmdigits_keras[torch]', and "
                      "KERAS_BACKEND picks it; Kaggle and Colab notebooks have TensorFlow and JAX already")

__version__ = "0.3.0"

# TensorFlow's start-up and C++ notices stay out of a notebook's output, as out of the CLI's;
# MMDIGITS_TF_LOGS=1 keeps them (docs/getting-started.md). Before anything imports TensorFlow.
quiet_tensorflow()

# The public API: what users call. Everything else is imported from its subpackage
# (`mmdigits_keras.data`, `.models`, `.training`, `.tuning`, `.evaluation`, `.submission`,
# `.export`); docs/api.md follows this table.
_EXPORTS = {
    # models: builders and the registry
    "build_model": "models",
    "create_model": "models",
    "create_backbone": "models",
    "get_backbone": "models",
    "feature_extractor": "models",
    "list_models": "models",
    "model_info": "models",
    "register_model": "models",
    # data: loaders and data sets
    "MultimodalDataset": "data.dataset",
    "load_dataset": "data.layouts",
    "load_kaggle": "data.layouts",
    "load_khacef": "data.layouts",
    "build_dataset": "data.build",
    "build_demo_data": "data.demo",
    # training
    "train": "training",
    "TrainingSettings": "training",
    "get_recipe": "training",
    "train_retrieval": "training",
    "load_trained_model": "training",
    "load_ensemble": "training",
    # search, submission, evaluation, export, the demo
    "run_search": "tuning",
    "load_search": "tuning",
    "submit": "submission",
    "evaluate": "evaluation",
    "evaluate_retrieval": "evaluation",
    "export_model": "export",
    "run_demo": "workflows",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
