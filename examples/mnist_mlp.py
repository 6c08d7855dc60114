"""Train a 784-256-128-10 MLP on MNIST: the same run as `tinynn train`, as plain library calls.

    python examples/mnist_mlp.py              # ~98.3% test accuracy in about half a minute
    python examples/mnist_mlp.py --quick      # a few seconds, on 3000 images (a smoke test)
    python examples/mnist_mlp.py --out DIR    # where the model and curves go (default runs/mnist_mlp)

Edit anything below: layer sizes, dropout, the optimizer, the schedule, the number of epochs.
"""

import argparse
from pathlib import Path

import numpy as np

import tinynn as tn
from tinynn.layers import Dense, Dropout, ReLU

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--quick", action="store_true", help="2 epochs on 3000 images (a smoke test)")
parser.add_argument("--out", type=Path, default=Path("runs/mnist_mlp"),  # git ignores runs/
                    help="folder for model.npz and curves.png (default: runs/mnist_mlp)")
args = parser.parse_args()
quick = args.quick
tn.seed(0)  # one seed for init, shuffling and dropout: the run is reproducible

# Images stay uint8 (47 MB instead of 188 MB); fit/evaluate scale each batch to [0, 1].
(x_train, y_train), (x_test, y_test) = tn.data.load_mnist(dtype=np.uint8)
if quick:
    x_train, y_train = x_train[:3000], y_train[:3000]
x_train, x_val = x_train[:-len(x_train) // 12], x_train[-len(x_train) // 12 :]  # hold out the last 1/12
y_train, y_val = y_train[:-len(y_train) // 12], y_train[-len(y_train) // 12 :]

net = tn.Net([
    Dense(784, 256), ReLU(), Dropout(0.1),
    Dense(256, 128), ReLU(), Dropout(0.1),
    Dense(128, 10),  # logits: the loss applies the softmax
])  # fmt: skip
print(net.summary())

epochs, batch_size = (2 if quick else 10), 128
optimizer = tn.optim.Adam(lr=1e-3)
steps = epochs * -(-len(x_train) // batch_size)  # batches in the whole run
schedule = tn.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)  # lr: 1e-3 -> 0, smoothly
model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), optimizer)

history = model.fit(
    x_train, y_train, epochs=epochs, batch_size=batch_size,
    validation_data=(x_val, y_val), scheduler=schedule, scheduler_interval="batch",
)  # fmt: skip

scores = model.evaluate(x_test, y_test)
print(f"test accuracy: {scores['accuracy']:.4f}  (loss {scores['loss']:.4f})")
predicted = model.predict(x_test).argmax(axis=1)
print(tn.metrics.classification_report(y_test, predicted))

out = args.out
out.mkdir(parents=True, exist_ok=True)
model.save(out / "model.npz")  # reload with tn.Model.load(out / "model.npz")
history.plot(out / "curves.png")
print(f"wrote {out / 'model.npz'} and {out / 'curves.png'}")
