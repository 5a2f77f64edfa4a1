"""``python tools/wrong_mask_head.py BINARY_STEM DATASET OUT_STEM``: a three-class classifier that keeps a trained
binary model's mask / no-mask answer and adds a head for masks worn wrong.

The binary model (``BINARY_STEM.keras``) stays as it is, so its P(mask) is unchanged. A second head of the seed's
shape (Dense(128, relu), Dropout(0.5), Dense(1, sigmoid)) reads the same pooled MobileNetV2 features and gives
q = P(incorrect). The saved model's output is the softmax-like vector over (no_mask, mask, incorrect):
((1 - P(mask)) (1 - q), P(mask) (1 - q), q), so the detector runs it as any three-class model (one forward pass).
``--incorrect-threshold T`` moves q's logit by -logit(T): "incorrect" then wins roughly where q >= T (several values:
one model each from the same heads, to choose T on development faces). ``--features LAYER...`` picks the maps the
heads read (default ``head_pool``: the 7 x 7 x 1280 map before the binary head's pooling; e.g. ``block_12_add``, the
14 x 14 x 96 output of MobileNetV2's block 12, where the nose and the mask's edge are twice as finely placed);
``--tune-from LAYER`` puts a trainable copy of the binary model's layers from LAYER to that map in each head.

Only the new head trains: DATASET's ``with_mask/``, ``without_mask/``, ``incorrect_mask/`` (``groups.csv``), the
group-aware split of ``train.test_split`` (a person stays on one side), features of ``--copies`` augmented copies of
each training image (``augment`` config; ``--grayscale-share`` of them grey) plus the image itself, binary
cross-entropy (incorrect vs the rest) with balanced weights, Adam, the best epoch on a group-aware validation part.
The test split's confusion matrix goes to the card. Needs the train extras (TensorFlow).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from maskwatch.card import CLASS_NAMES_3, card_path, model_path
from maskwatch.checksums import file_sha256
from maskwatch.cli import Parser, add_config_args, config_from_args, run
from maskwatch.config import AugmentConfig
from maskwatch.errors import UserError
from maskwatch.files import IMAGE_EXTS, atomic_path, check_writable
from maskwatch.tf_quiet import import_tensorflow

INCORRECT = 2  # train.dataset's label of incorrect_mask/
FEATURES_LAYER = "head_pool"  # its input: the binary model's MobileNetV2 feature map, 7 x 7 x 1280 at 224 (train.model)
HEAD_EPOCHS = 60
VAL_SHARE = 0.15


def composed_probs(p_mask: Any, q: Any) -> Any:
    """The three columns (no_mask, mask, incorrect) from P(mask) and P(incorrect); works on numpy and Keras
    tensors alike (n, 1) -> (n, 3)."""
    rest = 1 - q
    parts = [(1 - p_mask) * rest, p_mask * rest, q]
    if isinstance(p_mask, np.ndarray):
        return np.concatenate(parts, axis=1)
    import keras

    return keras.layers.Concatenate(name="class_probs")(parts)


def build_head(map_shapes: Sequence[tuple[int, ...]], seed: int, *, channels: int = 32, l2: float = 0.0) -> Any:
    """Feature map -> 1x1 conv to ``channels`` (the head keeps where on the face things are) -> Flatten -> the
    seed's Dense(128, relu), Dropout(0.5), Dense(1): the logit of P(incorrect); ``l2``: weight decay of the kernels.
    One input per shape of ``map_shapes``, every map reduced and flattened on its own, then joined. Layer names
    end in ``_{seed}`` so several heads fit in one model."""
    import keras

    keras.utils.set_random_seed(seed)
    shapes = [tuple(s) for s in map_shapes]
    decay = keras.regularizers.L2(l2) if l2 > 0 else None
    inputs, flat = [], []
    for k, shape in enumerate(shapes):
        tag = "" if len(shapes) == 1 else f"{k}_"
        inputs.append(keras.Input(shape, name="feature_map" if not tag else f"feature_map_{k}"))
        x = keras.layers.Conv2D(channels, 1, activation="relu", kernel_regularizer=decay,
                                name=f"wrong_reduce_{tag}{seed}")(inputs[-1])  # fmt: skip
        flat.append(keras.layers.Flatten(name=f"wrong_flatten_{tag}{seed}")(x))
    x = flat[0] if len(flat) == 1 else keras.layers.Concatenate(name=f"wrong_join_{seed}")(flat)
    x = keras.layers.Dense(128, activation="relu", kernel_regularizer=decay, name=f"wrong_dense_{seed}")(x)
    x = keras.layers.Dropout(0.5, name=f"wrong_dropout_{seed}")(x)
    model_in = inputs[0] if len(inputs) == 1 else inputs
    return keras.Model(model_in, keras.layers.Dense(1, name=f"incorrect_logit_{seed}")(x), name=f"head_{seed}")


def tuned_head(binary: Any, tune_from: str, layers: Sequence[str], seed: int, **head_options: Any) -> Any:
    """A head (``build_head``) behind a trainable copy of the binary model's layers from ``tune_from``'s output to
    its ``layers`` map, starting from the binary model's weights: the head reads that map fine-tuned for
    P(incorrect), while the binary model's own layers, and so its P(mask), stay as they are."""
    import keras

    start = feature_tensors(binary, [tune_from])[0]
    part = keras.Model(start, feature_tensors(binary, layers), name=f"tuned_{seed}")
    copy = keras.models.clone_model(part, recursive=True)  # own layers, also inside nested models
    copy.set_weights(part.get_weights())
    copy.trainable = True
    head = build_head([t.shape[1:] for t in _listed(copy.outputs)], seed, **head_options)
    x = keras.Input(start.shape[1:], name="tune_from_map")
    return keras.Model(x, head(_one_or_list(_listed(copy(x)))), name=f"head_{seed}")


def _listed(tensors: Any) -> list[Any]:
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def feature_tensors(binary: Any, layers: Sequence[str]) -> list[Any]:
    """The binary model's tensors the heads read: ``head_pool`` is its input (the 7 x 7 x 1280 feature map), any
    other name that layer's output (e.g. ``block_12_add``, 14 x 14 x 96 at 224)."""
    names = {layer.name for layer in binary.layers}
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise UserError(f"the binary model has no layer {', '.join(unknown)} (--features)")
    return [binary.get_layer(n).input if n == FEATURES_LAYER else binary.get_layer(n).output for n in layers]


def compose(binary: Any, heads: Sequence[Any], logit_shift: float, layers: Sequence[str] = (FEATURES_LAYER,)) -> Any:
    """The binary model with ``heads`` on its feature maps (``layers``, see ``feature_tensors``): q = sigmoid(mean
    of their logits + ``logit_shift``); output (n, 3) (``composed_probs``)."""
    import keras

    features = feature_tensors(binary, layers)
    logits = [head(_one_or_list(features)) for head in heads]
    logit = keras.layers.Average(name="incorrect_logit")(logits) if len(logits) > 1 else logits[0]
    q = keras.layers.Activation("sigmoid", name="p_incorrect")(logit + logit_shift)
    return keras.Model(binary.input, composed_probs(binary.output, q), name="mask_classifier_3class")


def cache_key(base: str, features: Sequence[str], augment: AugmentConfig, grayscale_share: float) -> str:
    """The name of a feature cache: ``base`` (model, data, copies, split), the maps read and, unless the default
    augmentation, a digest of it (other augmented copies, other features)."""
    key = base if list(features) == [FEATURES_LAYER] else f"{base}-{'+'.join(features)}"
    if augment != AugmentConfig() or grayscale_share > 0:
        key += "-" + hashlib.sha256(f"{augment}{grayscale_share}".encode()).hexdigest()[:12]
    return key


def features_of(extractor: Any, images_rgb: np.ndarray, augmenter: Any | None, batch: int = 64) -> list[np.ndarray]:
    """The feature maps of each image, one array per extractor output (augmented first when ``augmenter`` is
    given), float16, in batches."""
    outputs = extractor.outputs
    out: list[list[np.ndarray]] = [[] for _ in outputs]
    for start in range(0, len(images_rgb), batch):
        x = images_rgb[start : start + batch].astype(np.float32)
        if augmenter is not None:
            x = np.asarray(augmenter(x, training=True))
        maps = extractor(x, training=False)
        for k, y in enumerate(maps if isinstance(maps, (list, tuple)) else [maps]):
            out[k].append(np.asarray(y, np.float16))
    empty = [np.zeros((0, *t.shape[1:]), np.float16) for t in outputs]
    return [np.concatenate(o) if o else e for o, e in zip(out, empty, strict=True)]


def out_stem_for(out_stem: Path, threshold: float) -> Path:
    """The model of one of several ``--incorrect-threshold`` values: ``OUT_STEM_t0.7``."""
    return out_stem.with_name(f"{out_stem.name}_t{threshold:g}")


def _training_features(
    extractor: Any, images_rgb: np.ndarray, parts: tuple[np.ndarray, np.ndarray], augmenter: Any, copies: int,
    cached: Path | None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Feature maps (one array per extractor output) of the fitting images (themselves, then ``copies`` augmented
    passes) and of the validation images; kept in / read from ``cached`` (.npz) when given."""
    n_maps = len(extractor.outputs)
    names = ["fit", "val"] if n_maps == 1 else [f"{p}_{k}" for p in ("fit", "val") for k in range(n_maps)]
    if cached is not None and cached.is_file():
        with np.load(cached) as saved:
            arrays = [saved[n] for n in names]
        return arrays[: len(arrays) // 2], arrays[len(arrays) // 2 :]
    fit_idx, val_idx = parts
    passes = [features_of(extractor, images_rgb[fit_idx], None)]
    passes += [features_of(extractor, images_rgb[fit_idx], augmenter) for _ in range(copies)]
    x_fit = [np.concatenate([p[k] for p in passes]) for k in range(n_maps)]
    x_val = features_of(extractor, images_rgb[val_idx], None)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp, open(tmp, "wb") as f:
            np.savez(f, **dict(zip(names, [*x_fit, *x_val], strict=True)))
    return x_fit, x_val


def _one_or_list(items: list[Any]) -> Any:
    """A single-input Keras model takes its one array or tensor as it is, a multi-input one the list."""
    return items[0] if len(items) == 1 else items


def _confusion(labels: np.ndarray, predicted: np.ndarray) -> list[list[int]]:
    return [[int(((labels == a) & (predicted == b)).sum()) for b in range(3)] for a in range(3)]


def _main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    binary_keras = Path(f"{args.binary_stem}.keras")
    if not binary_keras.is_file():
        raise UserError(f"no Keras file of the binary model at {binary_keras} (python -m train writes one)")
    if not (args.dataset / "incorrect_mask").is_dir():
        raise UserError(f"{args.dataset} has no incorrect_mask/ folder (python -m train.maskify SRC DST --classes 3)")
    if not 0 <= args.grayscale_share <= 1:
        raise UserError(f"--grayscale-share must be between 0 and 1, got {args.grayscale_share}")
    if not all(0 < t < 1 for t in args.incorrect_threshold):
        raise UserError(f"--incorrect-threshold must be between 0 and 1, got {args.incorrect_threshold}")
    _check_numbers(args)
    _check_outputs(args)
    import_tensorflow()
    import keras

    from train import dataset
    from train.augment import build_augmenter
    from train.export import save_classifier

    t = cfg.train
    data = dataset.load_dataset(args.dataset, image_size=t.image_size, image_exts=IMAGE_EXTS)
    split = dataset.split_dataset(data.labels, data.groups, test_fraction=t.test_split, seed=t.seed)
    groups = [data.groups[i] for i in split.train]
    inner = dataset.split_dataset(data.labels[split.train], groups, test_fraction=VAL_SHARE, seed=t.seed)
    fit_idx, val_idx = split.train[inner.train], split.train[inner.test]
    binary = keras.models.load_model(binary_keras, compile=False)
    augmenter = build_augmenter(cfg.augment, seed=t.seed, grayscale_share=args.grayscale_share)
    print(f"features: {len(fit_idx)} training images x {args.copies + 1}, {len(val_idx)} validation, "
          f"{len(split.test)} test", file=sys.stderr)  # fmt: skip
    base = f"{file_sha256(binary_keras)[:16]}-{data.content_sha256[:16]}-{args.copies}-{t.seed}-{t.test_split}"
    read = [args.tune_from] if args.tune_from else args.features  # the maps cached: what the heads get
    key = cache_key(base, read, cfg.augment, args.grayscale_share)
    cached = args.cache / f"wrong-mask-features-{key}.npz" if args.cache else None
    extractor = keras.Model(binary.input, feature_tensors(binary, read))
    x_fit, x_val = _training_features(extractor, data.images_rgb, (fit_idx, val_idx), augmenter, args.copies, cached)
    y_fit = np.tile((data.labels[fit_idx] == INCORRECT).astype(np.float32), args.copies + 1)
    y_val = (data.labels[val_idx] == INCORRECT).astype(np.float32)
    n_pos = max(float(y_fit.sum()), 1.0)
    weights = {0: len(y_fit) / (2 * max(len(y_fit) - n_pos, 1.0)), 1: len(y_fit) / (2 * n_pos)}
    heads, epochs_run = [], []
    for k in range(args.heads):
        options = {"channels": args.channels, "l2": args.l2}
        head = (tuned_head(binary, args.tune_from, args.features, t.seed + k, **options) if args.tune_from
                else build_head([x.shape[1:] for x in x_fit], t.seed + k, **options))  # fmt: skip
        head.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                     loss=keras.losses.BinaryCrossentropy(from_logits=True))  # fmt: skip
        best = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)
        history = head.fit(_one_or_list(x_fit), y_fit, validation_data=(_one_or_list(x_val), y_val),
                           epochs=args.epochs, batch_size=t.batch_size, class_weight=weights, callbacks=[best],
                           verbose=0)  # fmt: skip
        epochs_run.append(len(history.history["loss"]))
        print(f"head {k + 1}/{args.heads}: {epochs_run[-1]} epochs, best validation loss "
              f"{min(history.history['val_loss']):.4f}", file=sys.stderr)  # fmt: skip
        heads.append(head)
    for threshold in args.incorrect_threshold:
        stem = args.out_stem if len(args.incorrect_threshold) == 1 else out_stem_for(args.out_stem, threshold)
        model = compose(binary, heads, -math.log(threshold / (1 - threshold)), read)
        test_probs = np.asarray(model.predict(data.images_rgb[split.test].astype(np.float32), verbose=0))
        labels = data.labels[split.test]
        confusion = _confusion(labels, np.argmax(test_probs, axis=1))
        print(f"threshold {threshold:g}: test confusion (rows: no_mask, mask, incorrect):", confusion, file=sys.stderr)
        card = {
            "made_by": "tools/wrong_mask_head.py: the binary model " + str(args.binary_stem) + " unchanged, plus a "
                       "P(incorrect) head on its feature map; output ((1-P(mask))(1-q), P(mask)(1-q), q)",
            "incorrect_threshold": threshold,
            "dataset": {"path": str(args.dataset), "content_sha256": data.content_sha256,
                        "counts": {n: int((data.labels == k).sum()) for k, n in enumerate(CLASS_NAMES_3)},
                        "split": {"fit": len(fit_idx), "validation": len(val_idx), "test": len(split.test)}},
            "head_training": {"features": list(args.features), "tune_from": args.tune_from,
                              "copies": args.copies, "channels": args.channels,
                              "l2": args.l2,
                              "heads": args.heads, "epochs_run": epochs_run,
                              "learning_rate": args.learning_rate, "class_weight": weights},
            "metrics": {"test_confusion_no_mask_mask_incorrect": confusion,
                        "test_accuracy": float(np.trace(np.array(confusion)) / max(len(labels), 1))},
            "reproduce": [" ".join(["python tools/wrong_mask_head.py",
                                    *map(str, sys.argv[1:] if argv is None else argv)])],
        }  # fmt: skip
        paths = save_classifier(model, stem, card)
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _check_numbers(args: argparse.Namespace) -> None:
    """The numeric options, before TensorFlow loads (a bad one was a traceback, or a model of no head)."""
    least = {"--copies": (args.copies, 0), "--epochs": (args.epochs, 1), "--heads": (args.heads, 1),
             "--channels": (args.channels, 1)}  # fmt: skip
    for name, (value, low) in least.items():
        if value < low:
            raise UserError(f"{name} must be at least {low}, got {value}")
    if not args.learning_rate > 0:
        raise UserError(f"--learning-rate must be more than 0, got {args.learning_rate:g}")
    if not args.l2 >= 0:
        raise UserError(f"--l2 must be 0 or more, got {args.l2:g}")


def _check_outputs(args: argparse.Namespace) -> None:
    """Every model stem written: not the binary model's, new (or ``--overwrite``), in a writable folder; the cache
    folder writable; all before TensorFlow loads."""
    several = len(args.incorrect_threshold) > 1
    stems = [out_stem_for(args.out_stem, t) if several else args.out_stem for t in args.incorrect_threshold]
    binary = Path(f"{args.binary_stem}.keras").resolve()
    for stem in stems:
        files = [card_path(stem), *(model_path(stem, kind) for kind in ("keras", "h5", "tflite"))]
        if binary in {f.resolve() for f in files}:
            raise UserError(f"OUT_STEM {stem} is the binary model {args.binary_stem}: it would be replaced; "
                            "choose another OUT_STEM")
        existing = [f for f in files if f.exists()]
        if existing and not args.overwrite:
            raise UserError(f"{existing[0]} exists: add --overwrite to replace the model, or choose another OUT_STEM")
        check_writable("OUT_STEM", stem.parent)
    if args.cache is not None:
        check_writable("--cache", args.cache)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python tools/wrong_mask_head.py", description=__doc__,
                    formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("binary_stem", type=Path, help="trained binary model (stem of its .keras and .json)")
    parser.add_argument("dataset", type=Path, help="three-class crop dataset (with_mask, without_mask, incorrect_mask)")
    parser.add_argument("out_stem", type=Path, help="where to write the three-class model (.keras .h5 .tflite .json)")
    parser.add_argument("--copies", type=int, default=4, help="augmented copies of each training image (4)")
    parser.add_argument("--epochs", type=int, default=HEAD_EPOCHS, help=f"most epochs of the head ({HEAD_EPOCHS})")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's learning rate (0.001)")
    parser.add_argument(
        "--incorrect-threshold",
        type=float,
        nargs="+",
        default=[0.5],
        help="q at which incorrect wins, folded into the head's bias (0.5: unchanged); several: one model each, "
        "OUT_STEM_t<T>, from the same heads",
    )
    parser.add_argument("--heads", type=int, default=1, help="heads trained with different seeds, logits averaged (1)")
    parser.add_argument("--channels", type=int, default=32, help="channels the feature map is reduced to (32)")
    parser.add_argument("--l2", type=float, default=0.0, help="L2 weight decay of the head's kernels (0)")
    parser.add_argument("--features", nargs="+", default=[FEATURES_LAYER], metavar="LAYER",
                        help="layers of the binary model the heads read: head_pool means its input, the 7x7x1280 "
                        "map (default); any other name that layer's output, e.g. block_12_add (14x14x96); several: "
                        "joined")  # fmt: skip
    parser.add_argument("--tune-from", metavar="LAYER",
                        help="each head also trains its own copy of the binary model's layers from LAYER's output "
                        "(e.g. block_11_add) to the --features map, from their weights (default: none)")
    parser.add_argument("--grayscale-share", type=float, default=0.0,
                        help="share of the augmented copies turned grey, as infrared night cameras see (0)")
    parser.add_argument("--cache", type=Path, help="folder to keep the training features in between runs")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model at OUT_STEM")
    add_config_args(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
