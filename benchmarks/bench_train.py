"""Training speed: the plain-Keras peer (Nippani Ravi's Model 2 as a student writes it: `build_model`,
Adam, numpy arrays into `model.fit`, batch 32) against the default (`train`'s default model and
recipe through the training engine), or any model:recipe pairs.

Each contender runs in its own process (so peak RSS is its own) on kaggle_sample's 3,200 training
rows for the same number of epochs, and reports: samples per second (epochs after the first,
which includes tracing), achieved GFLOP/s (training FLOPs per sample, counted from the layer
shapes as 3 x the forward pass, times samples per second), that as a fraction of this machine's
float32 matmul peak (measured in the same run), seconds until validation accuracy first reached
0.99, and peak RSS; then prediction throughput on 10,000 samples.

    .venv/bin/python benchmarks/bench_train.py [--epochs 12] [--runs peer hybrid_cnn:default model2:plain]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def forward_flops(model):
    """Multiply-adds x 2 of one sample's forward pass, from the layer output shapes."""
    import keras
    import numpy as np

    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, keras.Model):  # the nested backbone
            total += forward_flops(layer)
        if kind in ("Conv1D", "Conv2D"):
            out = np.prod(layer.output.shape[1:-1])
            kernel = np.prod(layer.kernel_size) * layer.input.shape[-1] * layer.filters
            total += 2 * out * kernel
        elif kind == "Dense":
            total += 2 * layer.input.shape[-1] * layer.units
        elif kind == "LSTM":
            steps, inputs = layer.input.shape[1], layer.input.shape[2]
            total += 2 * steps * 4 * layer.units * (inputs + layer.units)
    return int(total)


def matmul_peak(seconds=3.0, n=2048):
    """float32 GFLOP/s of repeated n x n matmuls with TensorFlow on this machine."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.matmul(a, b).numpy()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        tf.matmul(a, b).numpy()
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - started) / 1e9


def child(spec, epochs, data):
    import keras
    import numpy as np

    from mmdigits_keras.models import build_model
    from mmdigits_keras.training import build_classifier, compile_model, fit_model, get_recipe, prepare_data

    name, recipe = ("model2", "plain") if spec == "peer" else spec.split(":")
    plan = get_recipe(recipe)
    prepared = prepare_data(data, val_fraction=0.2, seed=0, synthetic_share=plan.synthetic_share)
    train_part = prepared.train
    keras.utils.set_random_seed(0)
    if spec == "peer":
        model = build_model(depth=2)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    else:  # the engine's way, as `mmdigits train` builds and trains it
        model = compile_model(build_classifier(name, prepared, plan), plan, learning_rate=1e-3)

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start, self.ends, self.reached = time.perf_counter(), [], None

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(time.perf_counter() - self.start)
            if self.reached is None and logs.get("val_accuracy", 0) >= 0.99:
                self.reached = self.ends[-1]

    clock = Clock()
    if spec == "peer":
        validation = prepared.validation
        model.fit(train_part.inputs(), train_part.labels, batch_size=32, epochs=epochs, callbacks=[clock], verbose=0,
                  validation_data=(validation.inputs(), validation.labels))
    else:
        fit_model(model, prepared, plan, epochs=epochs, seed=0, patience=epochs, callbacks=[clock], verbose=0)
    steady = (clock.ends[-1] - clock.ends[0]) / (epochs - 1)  # includes each epoch's validation pass
    rng = np.random.default_rng(0)
    inputs = {"image": rng.uniform(size=(10000, 28, 28, 1)).astype("float32"),
              "audio": rng.normal(size=(10000, 507)).astype("float32")}
    model.predict(inputs, batch_size=512, verbose=0)
    started = time.perf_counter()
    model.predict(inputs, batch_size=512, verbose=0)
    predict_seconds = time.perf_counter() - started
    return {"recipe": spec, "batch_size": plan.batch_size, "samples_per_second": len(train_part) / steady,
            "seconds_to_099": clock.reached, "epochs": epochs, "forward_flops": forward_flops(model),
            "predict_per_second": 10000 / predict_seconds,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared / "kaggle_sample")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--runs", nargs="+", default=["peer", "hybrid_cnn:default"],
                        help="peer or model:recipe pairs; the first is the reference of the ratios")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.epochs, args.data)))
        return 0
    peak = matmul_peak()
    rows = []
    for spec in args.runs:
        done = subprocess.run([sys.executable, __file__, "--child", spec, "--epochs", str(args.epochs),
                               "--data", str(args.data)], capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"float32 matmul peak (2048 x 2048, TensorFlow): {peak:.1f} GFLOP/s\n")
    print("| model:recipe | batch | samples/s | training GFLOP/s | of peak | s to val acc 0.99 | peak RSS (MiB) | predict samples/s | predict GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        train_gflops = 3 * r["forward_flops"] * r["samples_per_second"] / 1e9
        predict_gflops = r["forward_flops"] * r["predict_per_second"] / 1e9
        reached = f"{r['seconds_to_099']:.0f}" if r["seconds_to_099"] else f"not in {r['epochs']} epochs"
        print(f"| {r['recipe']} | {r['batch_size']} | {r['samples_per_second']:.0f} | {train_gflops:.1f} | "
              f"{train_gflops / peak:.1%} | {reached} | {r['peak_rss_mib']:.0f} | {r['predict_per_second']:.0f} | "
              f"{predict_gflops:.1f} | {predict_gflops / peak:.1%} |")
    reference = rows[0]
    for r in rows[1:]:
        print(f"\n{r['recipe']} / {reference['recipe']} samples per second: "
              f"{r['samples_per_second'] / reference['samples_per_second']:.2f}x")
    print("forward pass per sample: " + ", ".join(f"{r['recipe']} {r['forward_flops'] / 1e6:.1f} MFLOP" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
