"""Tensor-in, tensor-out building blocks; every layer is named from the caller's prefix.

Nippani Ravi's tables place BatchNormalization right after each convolution and hidden Dense
layer (the ReLU sits inside the layer, as in the course notebooks' ``activation="relu"``).
"""

from __future__ import annotations

from keras import layers

# Keras's default 0.99 needs thousands of steps before the moving statistics match the
# weights; on course-size data (a few hundred steps) inference then scored at chance level
# (measured: 0.17 validation accuracy after 3 epochs of Model 2 on the demo data). 0.9 is
# PyTorch's default (Tseng trains in PyTorch).
BN_MOMENTUM = 0.9


def conv_bn(x, filters, *, kernel_size, name, padding="valid"):
    """Conv1D or Conv2D (chosen by the rank of `x`) with ReLU, then BatchNormalization.

    Args:
        x: (batch, steps, channels) for Conv1D or (batch, height, width, channels) for Conv2D.
        filters: Number of output channels.
        kernel_size: Kernel size (int).
        name: Layer name; the normalization is ``{name}_bn``.
        padding: ``"valid"`` or ``"same"``.

    Returns:
        The normalized feature map: (batch, steps - kernel_size + 1, filters) for a valid
        Conv1D, (batch, height, width, filters) for a same Conv2D.
    """
    conv = layers.Conv1D if len(x.shape) == 3 else layers.Conv2D
    x = conv(filters, kernel_size, padding=padding, activation="relu", name=name)(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)


def dense_bn(x, units, *, name):
    """Dense with ReLU, then BatchNormalization (``{name}_bn``): (batch, d) -> (batch, units)."""
    x = layers.Dense(units, activation="relu", name=name)(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)


def pool(x, *, name):
    """2x max pooling over time (Conv1D maps) or over height and width (Conv2D maps)."""
    pooling = layers.MaxPooling1D if len(x.shape) == 3 else layers.MaxPooling2D
    return pooling(2, name=name)(x)


def dropout(x, rate, *, name):
    """Dropout with `rate` in [0, 1); returns `x` unchanged (no layer) when rate is 0."""
    return layers.Dropout(rate, name=name)(x) if rate > 0 else x


def lstm_encoder(x, units, *, num_layers=2, name):
    """Stacked LSTMs over (batch, time, features); returns the last state (batch, units).

    Reference: Tseng, Table 3 (AudioNet_LSTM: 2 LSTM layers of 64 units).
    """
    for i in range(1, num_layers + 1):
        last = i == num_layers
        x = layers.LSTM(units, return_sequences=not last, name=f"{name}{i}")(x)
    return x


def check_width_and_dropout(width, dropout):
    """Raises ValueError unless `width` > 0 and `dropout` is in [0, 1) (every family's builders)."""
    if not width > 0:
        raise ValueError(f"`width` must be > 0. Received: width={width!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1). Received: dropout={dropout!r}")


def scaled(units, width):
    """Scales a filter or unit count by the `width` multiplier, at least 1."""
    return max(1, int(round(units * width)))


def conv_block(x, filters, *, name, kernel_size=3):
    """Tseng's ConvBlock: convolution ("same", no bias activation), BatchNormalization, ReLU.

    Conv1D or Conv2D by the rank of `x`; layers ``{name}``, ``{name}_bn``, ``{name}_relu``.
    """
    conv = layers.Conv1D if len(x.shape) == 3 else layers.Conv2D
    x = conv(filters, kernel_size, padding="same", name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


__all__ = ["check_width_and_dropout", "conv_bn", "conv_block", "dense_bn", "pool", "dropout", "lstm_encoder", "scaled"]
