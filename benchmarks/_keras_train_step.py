"""Keras reference of the single-band CNN train step (run by bench_train_step.py in its own venv).

The authors' architecture and training call (Ho et al. 2023; McWilliamsCenter/halo_cnn): Conv2D
24@5 -> Conv2D 10@3 -> MaxPool 4 -> Conv2D 24@5 -> Conv2D 10@3 -> MaxPool 2 -> Dense 128 -> 128
-> 64 -> 1, ReLU, L2(1e-4) on kernels, Adam 1e-3, MSE, ``model.fit`` with batch 50.
Prints one JSON line: {"img_per_s": [...], "params": N, "tf": version, "keras": version,
"onednn": setting, "gpus": number of GPUs tensorflow sees}.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    steps, repeats, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    import numpy as np
    import tensorflow as tf

    if threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    from keras import layers, regularizers

    l2 = regularizers.l2(1e-4)
    model = keras.Sequential(
        [
            keras.Input((128, 128, 1)),
            layers.Conv2D(24, 5, padding="same", activation="relu", kernel_regularizer=l2),
            layers.Conv2D(10, 3, padding="same", activation="relu", kernel_regularizer=l2),
            layers.MaxPooling2D(4),
            layers.Conv2D(24, 5, padding="same", activation="relu", kernel_regularizer=l2),
            layers.Conv2D(10, 3, padding="same", activation="relu", kernel_regularizer=l2),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(128, activation="relu", kernel_regularizer=l2),
            layers.Dense(128, activation="relu", kernel_regularizer=l2),
            layers.Dense(64, activation="relu", kernel_regularizer=l2),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps * 50, 128, 128, 1)).astype("float32")
    y = rng.uniform(-1, 1, (steps * 50, 1)).astype("float32")
    model.fit(x, y, batch_size=50, epochs=1, verbose=0, shuffle=True)  # warm-up / tracing
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=50, epochs=1, verbose=0, shuffle=True)
        rates.append(len(x) / (time.perf_counter() - t0))
    print(
        json.dumps(
            {
                "img_per_s": rates,
                "params": int(model.count_params()),
                "tf": tf.__version__,
                "keras": keras.__version__,
                "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
                "gpus": len(tf.config.list_physical_devices("GPU")),
            }
        )
    )


if __name__ == "__main__":
    main()
