"""Train LeNet-5 on MNIST (the run of `tinynn train --model cnn`) and draw what it learned.

    python examples/mnist_cnn.py --out docs/figures           # the full run: ~99.3% test accuracy
    python examples/mnist_cnn.py --quick --out /tmp/cnn      # seconds: 1 epoch on 1024 images (a smoke test)
    python examples/mnist_cnn.py --load runs/cnn/model.npz --out docs/figures   # draw a trained model

The recipe (optimizer, learning rate, schedule, epochs, batch size, random shifts, seed) is the one
`tinynn train --model cnn` uses, read from the same defaults (tinynn.zoo.TRAIN_DEFAULTS and the
CLI's), so this script and the command train the same model. --quick is that run with
`--epochs 1 --limit 1024`.

Writes two figures into --out: cnn_filters.png (the six learned 5x5 first-layer filters) and
cnn_feature_maps.png (one test digit and what each conv layer makes of it).
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinynn as tn  # noqa: E402
from tinynn import runs, zoo  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--quick", action="store_true", help="1 epoch on 1024 images")
parser.add_argument("--out", default=".", help="folder for the PNG figures")
parser.add_argument("--load", metavar="MODEL", help="draw this checkpoint instead of training")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)

# The options of `tinynn train --model cnn [--epochs 1 --limit 1024]`, with every default filled in.
recipe = runs.parse_run_options(["--model", "cnn", *(["--epochs", "1", "--limit", "1024"] if args.quick else [])])
assert recipe.scheduler == "cosine" and not recipe.weight_decay  # what the code below builds
tn.seed(recipe.seed)

(x_train, y_train), (x_test, y_test) = tn.data.load_mnist(dtype=np.uint8)  # uint8; scaled per batch
x_train, y_train = x_train[: recipe.limit], y_train[: recipe.limit]  # (limit None: all of them)
n_val = min(recipe.val_size, len(x_train) // 10)  # the last 5,000 training images validate
x_train, x_val, y_train, y_val = x_train[:-n_val], x_train[-n_val:], y_train[:-n_val], y_train[-n_val:]

if args.load:
    model = tn.Model.load(args.load, restore_rng=False)
else:
    net = zoo.lenet5()  # Reshape((1, 28, 28)) first: flat 784-pixel rows go straight in
    print(net.summary(input_shape=(784,)))
    optimizer = tn.optim.get(recipe.optimizer, lr=recipe.lr)  # Adam
    steps = recipe.epochs * -(-len(x_train) // recipe.batch_size)
    schedule = tn.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)  # per batch, down to 0
    # Each training image moves by up to recipe.random_shift pixels each way, a new draw every epoch.
    shift = tn.data.RandomShift(recipe.random_shift, zoo.IMAGE_SHAPE) if recipe.random_shift else None
    model = tn.Model(net, tn.losses.SoftmaxCrossEntropy(), optimizer, gradient_clip=recipe.gradient_clip)
    model.fit(x_train, y_train, epochs=recipe.epochs, batch_size=recipe.batch_size, validation_data=(x_val, y_val),
              scheduler=schedule, scheduler_interval="batch", augment=shift)  # fmt: skip

scores = model.evaluate(x_test, y_test)
print(f"test accuracy: {scores['accuracy']:.4f} (loss {scores['loss']:.4f})")  # as tinynn train prints it

# -- the learned first-layer filters: w of the first Conv2D, (6, 1, 5, 5) --------------------------
layers = model.net.layers
convs = [i for i, layer in enumerate(layers) if isinstance(layer, tn.layers.Conv2D)]
w = layers[convs[0]].params["w"][:, 0]
fig, axes = plt.subplots(1, len(w), figsize=(12, 3.2), dpi=110)
limit = np.abs(w).max()
for k, (ax, f) in enumerate(zip(axes, w, strict=True)):
    im = ax.imshow(f, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_title(f"filter {k}")
    ax.set_xticks([])
    ax.set_yticks([])
fig.colorbar(im, ax=list(axes), shrink=0.8, label="weight")
fig.suptitle("LeNet-5 first-layer filters (5x5; red: positive, blue: negative weights)")
fig.savefig(out / "cnn_filters.png")
plt.close(fig)

# -- feature maps of one test digit: the output of each conv layer ---------------------------------
model.net.eval()
digit = x_test[:1]
h, maps = digit.astype(np.float32) / 255, {}
for i, layer in enumerate(layers):
    h = layer.forward(h)
    if i in convs:
        maps[i] = np.array(h[0])  # copy: layers reuse their output arrays
first, second = maps[convs[0]], maps[convs[1]]
cols = 8
fig = plt.figure(figsize=(14, 5.6), dpi=110, layout="constrained")
grid = fig.add_gridspec(3, cols + 1, width_ratios=[1] * cols + [0.07])  # the last column: colorbars
axes = np.array([[fig.add_subplot(grid[r, c]) for c in range(cols)] for r in range(3)])
for ax in axes.ravel():
    ax.axis("off")
axes[0, 0].imshow(digit.reshape(28, 28), cmap="gray_r")
axes[0, 0].set_title(f"input (label {y_test[0]})")
# One colour scale per conv layer, centred on 0 (white), so maps of a layer compare by colour
# and the colorbars give the values.
for fms, cells, name, bar in ((first, axes[0, 1 : 1 + len(first)], "conv1", grid[0, cols]),
                              (second, axes[1:].ravel()[: len(second)], "conv2", grid[1:, cols])):  # fmt: skip
    limit = float(np.abs(fms).max()) or 1.0
    for k, (ax, fm) in enumerate(zip(cells, fms, strict=True)):
        im = ax.imshow(fm, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(f"{name} map {k}", fontsize=9)
    fig.colorbar(im, cax=fig.add_subplot(bar), label=f"{name} output")
fig.suptitle("Feature maps of one test digit: conv 1 (6 x 28x28, before pooling), conv 2 (16 x 10x10);\n"
             "one colour scale per layer, red positive, blue negative")
fig.savefig(out / "cnn_feature_maps.png")
plt.close(fig)
print(f"wrote cnn_filters.png and cnn_feature_maps.png to {out}")
