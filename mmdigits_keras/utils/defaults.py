"""The package's defaults and choices, in one module without Keras or a backend: the library's
signatures take their defaults from here, and the command line's ``--help`` and choices read
them without starting TensorFlow (its arguments default to None, so the library decides). The
library checks itself against them (`mmdigits_keras.training.recipes` builds its `RECIPES` for
exactly `RECIPE_NAMES`)."""

# Keras's backends the package runs on (each its Python module's name); KERAS_BACKEND picks one.
BACKENDS = ("tensorflow", "jax", "torch")

# `export --format` (export.py): ONNX on every backend, TensorFlow's SavedModel and TFLite on its own.
EXPORT_FORMATS = ("onnx", "saved_model", "tflite")

# `train`'s, `tune`'s and the demo's model: the robustness benchmark's winner (docs/results.md).
DEFAULT_MODEL = "hybrid_cnn"
# `retrieval train`'s towers: Tseng's image and speech CNN encoders.
DEFAULT_TOWERS = "hybrid_cnn"
# `train(strategy=...)`: multi-device strategies by name (training/distribute.py).
STRATEGIES = ("default", "mirrored")
# `train --augment-on`: where the augmentation runs (training/placement.py). The default: on this
# project's 2-core CPU the device trained the default recipe faster than the host on TensorFlow
# and JAX and as fast on PyTorch (benchmarks/bench_pipeline.py, docs/results.md); Keras's guide
# expects the same on a GPU, which benchmarks/gpu_check.sh measures.
AUGMENT_ON = ("device", "host")
DEFAULT_AUGMENT_ON = "device"
# The registered recipes (training/recipes.py); the first is the default.
RECIPE_NAMES = ("default", "plain")
DEFAULT_RECIPE = RECIPE_NAMES[0]
# keras-tuner objectives a search may optimize, with their direction.
OBJECTIVES = {"val_accuracy": "max", "val_loss": "min", "accuracy": "max", "loss": "min"}
DEFAULT_OBJECTIVE = "val_accuracy"

# `train` (and a search's best/, trained as `train` trains).
EPOCHS = 30  # maximum; early stopping
LEARNING_RATE = 1e-3
VAL_FRACTION = 0.2
# Early stopping's patience: None scales it to the training rows (`training.schedule.scaled_patience`):
# about PATIENCE_SAMPLES samples in whole epochs, from MIN_PATIENCE to MAX_PATIENCE epochs.
PATIENCE = None
PATIENCE_SAMPLES = 42_000
MIN_PATIENCE, MAX_PATIENCE = 2, 10
SEED = 0
# What `train` (and `retrieval train`) saves after its validated run (`training.finetune`):
# "finetune" (that model, trained on further on every row, the validation rows too) or "single"
# (the validated model itself). Chosen on the four FSDD rotations' held-out speakers over 3
# seeds, for fusion, speech alone and retrieval (docs/results.md). Fold runs are always "single".
PROTOCOLS = ("finetune", "single")
PROTOCOL = "finetune"
# Fine-tuning's epochs, capped at the validated run's best epoch (so at scale, where runs keep an
# early epoch, it costs no more epochs than validation kept).
FINETUNE_EPOCHS = 10
# Semi-supervised training (`training.pseudo_labels`): a test row's pseudo-label is kept when the
# labelling model is at least as confident as where its predictions on the validation rows are
# this precise (Lee 2013's pseudo-labels, FixMatch's confidence threshold, here calibrated).
PSEUDO_LABEL_PRECISION = 0.99
# `tune`: a few trials, each at `train`'s own schedule, so a trial's validation score is that of
# the model `train` would save (trials of 10 epochs ranked configurations that 30 epochs reorder).
MAX_TRIALS = 4
TRIAL_EPOCHS = EPOCHS
ORACLE_TIMEOUT_S = 60.0
# `demo`.
DEMO_EPOCHS = 5
# `retrieval train`. Symmetric InfoNCE over Xia et al.'s max-margin loss: validation (a held-out
# training speaker) preferred it on every seed (docs/results.md).
RETRIEVAL_LOSSES = ("max_margin", "info_nce")
RETRIEVAL_LOSS = "info_nce"
MARGIN = 0.2
TEMPERATURE = 0.1
EMBEDDING_DIM = 128
RETRIEVAL_EPOCHS = 50
RETRIEVAL_BATCH_SIZE = 128
