import numpy as np
import pytest
from conftest import synthetic_arrays

from mmdigits_keras.data import MultimodalDataset
from mmdigits_keras.data.mixing import mix_synthetic_speech


@pytest.fixture(scope="module")
def rows():
    pixels, audio, labels = synthetic_arrays(150, seed=3)
    return MultimodalDataset(images=pixels.reshape(-1, 28, 28, 1) / 255.0, audio=audio * 2.0 + 1.0, labels=labels,
                             ids=np.arange(150))


@pytest.mark.parametrize("share", [0.25, 0.5])
def test_synthetic_rows_make_up_the_requested_share(rows, share):
    mixed = mix_synthetic_speech(rows, share=share, seed=0)
    added = len(mixed) - len(rows)
    assert abs(added / len(mixed) - share) <= 1 / len(mixed)
    np.testing.assert_array_equal(mixed.audio[: len(rows)], rows.audio)  # the real rows come first, unchanged
    np.testing.assert_array_equal(mixed.labels[: len(rows)], rows.labels)
    assert len(set(mixed.ids.tolist())) == len(mixed)
    # each new row's image is a training image of its own digit
    flat = rows.images.reshape(len(rows), -1)
    for image, label in zip(mixed.images[len(rows):], mixed.labels[len(rows):]):
        match = np.flatnonzero(np.all(flat == image.reshape(-1), axis=1))
        assert match.size and rows.labels[match[0]] == label
    # the synthetic speech is brought to the data set's per-column scale
    synthetic = mixed.audio[len(rows):]
    assert not np.any(np.all(np.isclose(synthetic[:, None, :], rows.audio[None]), axis=2))
    assert abs(synthetic.mean() - rows.audio.mean()) < 0.3 and abs(synthetic.std() / rows.audio.std() - 1) < 0.3


def test_share_zero_and_bad_input(rows):
    assert mix_synthetic_speech(rows, share=0.0) is rows
    with pytest.raises(ValueError, match="share"):
        mix_synthetic_speech(rows, share=1.0)
    logmel = MultimodalDataset(images=rows.images, audio=np.zeros((150, 1560), np.float32), labels=rows.labels,
                               ids=rows.ids)
    with pytest.raises(ValueError, match="MFCC"):
        mix_synthetic_speech(logmel, share=0.2)
