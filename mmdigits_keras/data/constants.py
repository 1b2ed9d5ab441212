"""Shapes and vocabularies of the data contract (docs/data.md, "Data layouts"); no heavy imports,
so models can use them without loading pandas or the audio stack."""

IMAGE_SHAPE = (28, 28, 1)
NUM_PIXELS = 28 * 28
NUM_CLASSES = 10
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

NUM_FRAMES = 39
NUM_COEFFICIENTS = 13
NUM_FEATURES = NUM_FRAMES * NUM_COEFFICIENTS  # 507
NUM_MEL_BANDS = 40
# Feature kinds -> values per frame; a flattened row has NUM_FRAMES times as many values.
FEATURE_KINDS = {"mfcc": NUM_COEFFICIENTS, "logmel": NUM_MEL_BANDS}
AUDIO_WIDTHS = tuple(NUM_FRAMES * n for n in FEATURE_KINDS.values())  # (507, 1560)

# Simulated recording conditions of `build_dataset(channel=...)` (`mmdigits_keras.data.channels`).
CHANNELS = ("telephone", "gain+12", "gain-12", "noise20", "noise10", "room")
