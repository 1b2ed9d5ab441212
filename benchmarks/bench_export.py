"""Export formats side by side: file size, per-row latency and agreement with the Keras model.

Trains the default model (`mmdigits train` defaults) on ``kaggle_sample`` unless ``--run`` names
a run directory, exports it with `mmdigits export` as a SavedModel, a float TFLite file and a
dynamic-range quantized TFLite file, and times one row at a time (batch 1, as an app predicts)
over the first 200 test rows after 20 warm-up rows: the Keras model called directly, the
SavedModel's ``serving_default`` signature, and the LiteRT interpreter. Prints a Markdown table.

    .venv/bin/python benchmarks/bench_export.py [--run RUN] [--out runs/bench_export]
"""

import argparse
import statistics
import time
from pathlib import Path

import harness
import numpy as np

ROWS, WARM_UP = 200, 20


def per_row_ms(predict, inputs):
    """Median milliseconds of `predict` on one row, over ROWS rows after WARM_UP rows."""
    times = []
    for i in range(WARM_UP + ROWS):
        row = {name: values[i:i + 1] for name, values in inputs.items()}
        started = time.perf_counter()
        predict(row)
        if i >= WARM_UP:
            times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def size_mib(path):
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return sum(p.stat().st_size for p in files) / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=harness.SHARED / "kaggle_sample")
    parser.add_argument("--run", type=Path, help="run directory to export (default: train the default model)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_export"))
    args = parser.parse_args()

    import tensorflow as tf

    from mmdigits_keras.data import load_dataset
    from mmdigits_keras.export import export_model, load_tflite
    from mmdigits_keras.training import load_trained_model, train

    run = args.run or train(args.data, out=args.out / "run", overwrite=True, verbose=2)
    test = load_dataset(args.data, "test")
    inputs = {name: values[:WARM_UP + ROWS] for name, values in test.inputs().items()}
    model = load_trained_model(run)
    reference = model.predict(inputs, verbose=0)
    keras_file = Path(run) / "model.keras"
    rows = [(".keras (Keras, `model(x)`)", keras_file, per_row_ms(lambda x: model(x, training=False), inputs),
             reference)]

    saved = export_model(run, out=args.out / "saved_model", format="saved_model", overwrite=True)
    serve = tf.saved_model.load(str(saved)).signatures["serving_default"]
    tensors = {name: tf.constant(values) for name, values in inputs.items()}
    rows.append(("SavedModel (`serving_default`)", saved,
                 per_row_ms(lambda x: serve(**{k: tf.constant(v) for k, v in x.items()}), inputs),
                 serve(**tensors)["probabilities"].numpy()))
    for name, quantize in (("TFLite float32 (LiteRT)", None), ("TFLite dynamic-range int8 (LiteRT)", "dynamic")):
        path = export_model(run, out=args.out / f"model{'_' + quantize if quantize else ''}.tflite",
                            format="tflite", quantize=quantize, overwrite=True)
        predict = load_tflite(path)
        rows.append((name, path, per_row_ms(lambda x, f=predict: f(x, batch_size=1), inputs), predict(inputs)))

    labels = reference.argmax(1)
    print(f"\nrun: {run}; {ROWS} test rows of {args.data.name}, one row per call (median)\n")
    print("| format | size (MiB) | latency per row (ms) | same label as .keras | max abs. probability difference |")
    print("|---|---|---|---|---|")
    for name, path, ms, probabilities in rows:
        agree = np.mean(probabilities[WARM_UP:].argmax(1) == labels[WARM_UP:])
        diff = np.abs(probabilities[WARM_UP:] - reference[WARM_UP:]).max()
        print(f"| {name} | {size_mib(path):.2f} | {ms:.2f} | {agree:.3f} | {diff:.1e} |")


if __name__ == "__main__":
    main()
