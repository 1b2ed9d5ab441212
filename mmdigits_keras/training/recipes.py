"""Training recipes as data: the registry of named `Recipe` settings (``plain``, ``default``)
and the optimizer and loss each asks for. The augmentation a recipe switches on is
`mmdigits_keras.training.augment`; the `tf.data` pipeline that applies it is
`mmdigits_keras.training.pipeline`.

``plain``: Adam, sparse categorical cross-entropy, numpy arrays, batch 32, no augmentation —
the baseline the course papers use.

``default`` (robust to unseen speakers): a `tf.data` pipeline whose augmentation runs in
training only, so the saved model stays a pure inference model:

- speech: SpecAugment-style time masks (up to 6 frames) and frequency masks (up to 3
  coefficients), a time shift of up to 3 frames (25 ms each), Gaussian noise (0.2 standard
  deviations), all on the standardized 39-frame feature map; vocal-tract-length perturbation
  (+/-10%) and simulated reverberation of 30% of the utterances;
- images: small jitter (shift 10%, rotation 5%, zoom 10%, drawn as Keras's RandomTranslation, RandomRotation and
  RandomZoom draw them), one affine map resampled once (`keras.ops.image.affine_transform`);
- modality dropout: per sample, the image is blanked with probability 0.15 or else the speech
  with probability 0.5, so the fusion head cannot lean on one branch; speech swapped between
  samples in 40% of those that keep both (the label staying the image's);
- eSpeak NG voices as a quarter of the training rows (`mix_synthetic_speech`);
- label smoothing 0.1, AdamW with weight decay 1e-5 (Tseng), batch 128;
- per-utterance mean/variance normalization of the speech features
  (`build_model(utterance_normalization=True)`, part of the saved model), which removes a
  speaker's constant channel and level.

Each lever was chosen on the robustness benchmark (`benchmarks/bench_robust.py`); what was
measured and why it stays in or out is in docs/results.md and docs/experiments.md.
"""

from __future__ import annotations

import dataclasses

import keras

from mmdigits_keras.utils.checks import check_choice
from mmdigits_keras.utils.defaults import RECIPE_NAMES


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Settings of one training recipe (see the module docstring)."""

    name: str
    batch_size: int
    optimizer: str
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = False
    image_dropout: float = 0.0
    audio_dropout: float = 0.0
    # Share of samples (of those with both modalities kept) whose speech is swapped for another
    # sample's in the batch, the label staying the image's: the head meets confident speech
    # that is wrong and learns when not to follow it (0: off).
    audio_mismatch: float = 0.0
    time_mask: int = 0
    frequency_mask: int = 0
    time_shift: int = 0
    noise: float = 0.0
    # Normalize the speech input per utterance (cepstral mean and variance normalization, built
    # into the model): removes a speaker's constant channel and level.
    utterance_normalization: bool = False
    # Drop each epoch's last, smaller batch (in-batch negatives need full batches).
    drop_remainder: bool = False
    # Vocal-tract-length perturbation of MFCC rows: warp factor drawn from 1 +/- vtlp per
    # utterance (`augment.vtlp`; 0: off).
    vtlp: float = 0.0
    # Probability per utterance of simulated reverberation of MFCC rows (`augment.reverberate`; 0: off),
    # and the range of its direct-to-reverberant energy ratio in dB, drawn uniformly. Down to
    # -10 dB: a talker a few metres from the microphone in an ordinary room (near talkers
    # only, -5..+5 dB, left the fused model below the image alone in a simulated room).
    reverberation: float = 0.0
    reverberation_drr_db: tuple = (-10.0, 5.0)
    # Share of training rows whose speech is synthetic (eSpeak NG voices, `mix_synthetic_speech`).
    synthetic_share: float = 0.0

    @property
    def one_hot(self):
        """True when targets are one-hot rows (label smoothing), else class ids."""
        return bool(self.label_smoothing)


RECIPES = {
    "plain": Recipe(name="plain", batch_size=32, optimizer="adam"),
    # What won the robustness benchmark (docs/results.md): augmentation and modality dropout,
    # per-utterance normalization, speech swapped in 40% of the samples that keep both
    # modalities, simulated reverberation of 30% of the utterances, eSpeak NG voices as a
    # quarter of the training rows, and VTLP +/-10%.
    "default": Recipe(name="default", batch_size=128, optimizer="adamw", weight_decay=1e-5, label_smoothing=0.1,
                      augment=True, image_dropout=0.15, audio_dropout=0.5, time_mask=6, frequency_mask=3,
                      time_shift=3, noise=0.2, utterance_normalization=True, audio_mismatch=0.4, reverberation=0.3,
                      synthetic_share=0.25, vtlp=0.1),
}


if tuple(sorted(RECIPES)) != tuple(sorted(RECIPE_NAMES)):  # the CLI's choices come from RECIPE_NAMES
    raise ImportError(f"RECIPES {sorted(RECIPES)} and utils.defaults.RECIPE_NAMES {sorted(RECIPE_NAMES)} differ")


def get_recipe(name):
    """Returns the `Recipe` called `name` (a `Recipe` is returned as it is, so a variant made
    with ``dataclasses.replace(get_recipe("default"), ...)`` goes wherever a name does);
    ValueError lists the known names."""
    if isinstance(name, Recipe):
        return name
    check_choice("recipe", name, sorted(RECIPES))
    return RECIPES[name]


def make_optimizer(recipe, *, learning_rate):
    """The recipe's optimizer: AdamW (with its weight decay) or Adam."""
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=recipe.weight_decay)
    return keras.optimizers.Adam(learning_rate=learning_rate)


def make_loss(recipe):
    """The recipe's classification loss: cross-entropy on one-hot targets (with the recipe's
    label smoothing) when the recipe smooths labels, else on class ids."""
    if recipe.one_hot:
        return keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()
