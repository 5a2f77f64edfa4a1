"""One training run, the seed's twelve steps in order: data, split, augmentation, model, train, evaluate, save.

``train_run(cfg, dataset_dir)`` writes ``runs/<timestamp>/`` (config, log, history, reports, plots, best
checkpoint) and the model files in ``runs/<timestamp>/model/`` (``<stem>.keras``, ``.h5``, ``.tflite``, ``.json``);
``--install`` then puts them at ``classifier.model`` if not worse (train/install.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from maskwatch.config import Config
from maskwatch.errors import UserError
from maskwatch.files import IMAGE_EXTS, check_writable, write_bytes_atomic, write_json_atomic, write_text_atomic
from train import augment, dataset, evaluate, model, plots
from train.card import jsonable
from train.install import run_model_stem

log = logging.getLogger(__name__)
FINE_TUNE_LR_SHARE = 0.1  # fine-tuning runs at train.learning_rate times this (1e-5 for the classic 1e-4)
EXPORT_TFLITE = True  # the detector runs the .tflite (tests that need no .tflite turn it off)


@dataclass
class RunResult:
    run_dir: Path
    model_paths: dict[str, Path]
    split: dataset.Split
    history: dict[str, list[float]]
    metrics: dict[str, Any]
    phases: dict[str, Any] = field(default_factory=dict)
    install: dict[str, Any] = field(default_factory=dict)  # installed, reason, accuracies, line (empty: not asked)


def make_run_dir(cfg: Config) -> Path:
    """``runs/<UTC timestamp>/``, unique even for two runs in the same second."""
    root = cfg.output_path(cfg.paths.runs_dir)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        run_dir = root / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run directory under {root}")  # pragma: no cover


def make_strategy(name: str) -> Any:
    """``none``: the default strategy; ``mirrored``: all local GPUs, else all logical CPUs; ``multi_worker``."""
    import tensorflow as tf

    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG
    return tf.distribute.get_strategy()


def throughput_callback(n_images: int) -> Any:
    """Keras callback: images/s of the training part of each epoch (validation excluded), in ``images_per_s``."""
    import keras

    class Throughput(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.images_per_s: list[float] = []
            self._t0 = 0.0
            self._t_train = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._t0 = time.perf_counter()
            self._t_train = 0.0

        def on_test_begin(self, logs: Any = None) -> None:
            self._t_train = time.perf_counter() - self._t0

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seconds = self._t_train or (time.perf_counter() - self._t0)
            self.images_per_s.append(n_images / seconds)
            if logs is not None:
                logs["train_images_per_s"] = self.images_per_s[-1]

    return Throughput()


def best_weights_callback(path: Path) -> Any:
    """Keras callback: the weights of the epoch with the lowest ``val_loss`` so far at ``path`` (``.weights.h5``).

    Serialised in memory and written atomically: Keras' ``ModelCheckpoint`` writes HDF5 in place, so a full disk left
    a torn file and crashed the process in h5py (segmentation fault) instead of a clean disk-full error.
    """
    import keras

    class H5Buffer(io.BytesIO):
        def __str__(self) -> str:  # Keras checks the name's suffix, then writes the HDF5 file into the buffer
            return path.name

    class BestWeights(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.best = math.inf

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            loss = (logs or {}).get("val_loss")
            if loss is None or not loss < self.best:
                return
            self.best = float(loss)
            buffer = H5Buffer()
            self.model.save_weights(buffer)
            write_bytes_atomic(path, buffer.getvalue())

    return BestWeights()


def predict_validation_callback(val_ds: Any, labels: np.ndarray) -> Any:
    """Keras callback: ``val_loss`` / ``val_accuracy`` from ``model.predict`` at each epoch end.

    Used instead of ``validation_data`` with several replicas: Keras 3's distributed evaluate fails on a last batch
    that does not split evenly across replicas (AddN shape error), its predict does not.
    """
    import keras

    y = labels.astype(np.float64).reshape(-1)

    class PredictValidation(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            out = np.clip(self.model.predict(val_ds, verbose=0).astype(np.float64), 1e-7, 1 - 1e-7)
            if logs is None:
                return
            if out.shape[1] > 1:  # softmax: categorical cross-entropy on the true class
                logs["val_loss"] = float(-np.mean(np.log(out[np.arange(len(y)), y.astype(int)])))
                logs["val_accuracy"] = float(np.mean(np.argmax(out, axis=1) == y))
                return
            p = out.reshape(-1)
            logs["val_loss"] = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
            logs["val_accuracy"] = float(np.mean((p > 0.5) == (y > 0.5)))

    return PredictValidation()


def train_run(
    cfg: Config, dataset_dir: str | Path, *, progress: bool = True, install: bool = False, force: bool = False
) -> RunResult:
    """Run the twelve steps; return where everything went and the test metrics.

    The model goes to ``<run_dir>/model/``; with ``install`` (``--install``) or ``force`` it then
    replaces ``classifier.model`` if at least as accurate on this run's test split (``force``: always).
    """
    t = cfg.train
    _check_writable(cfg, install or force)  # before hours of work, not at the end
    # Step 1: load images and labels (RGB, image_size square), skipping and counting unusable files.
    data = dataset.load_dataset(
        dataset_dir,
        image_size=t.image_size,
        image_exts=IMAGE_EXTS,
        progress=progress,
    )
    # Step 2: stratified, group-aware split with the configured seed (+ optional validation share).
    split = dataset.split_dataset(data.labels, data.groups, test_fraction=t.test_split, seed=t.seed)
    fit_idx, val_idx = _validation_split(data, split, cfg)
    weights = dataset.class_weights(data.labels[fit_idx], t.class_weight)  # from the fitted images only
    named_weights = _named_weights(data, weights)
    base_weights = _base_weights(cfg)  # before the run directory: a missing asset is a clean error

    import keras

    run_dir = make_run_dir(cfg)
    file_log = _log_to_file(run_dir / "train.log")
    try:
        log.info("run directory %s", run_dir)
        write_text_atomic(run_dir / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        if data.skipped:
            log.warning("skipped %d file(s), listed in the model card and split.json", len(data.skipped))
        _log_split(data, split, val_idx is not None)
        log.info("class weights (train.class_weight=%s): %s", t.class_weight, named_weights)
        write_json_atomic(run_dir / "split.json", _split_record(data, split, fit_idx, val_idx, dataset_dir))

        keras.utils.set_random_seed(t.seed)
        # Step 3: augmentation layers, applied to the training pipeline only (outside the strategy scope:
        # they belong to the input pipeline, not to the replicated model).
        augmenter = augment.build_augmenter(cfg.augment, seed=t.seed)
        strategy = make_strategy(t.strategy)
        train_ds = augment.train_pipeline(
            data.images_rgb, data.labels, fit_idx, batch_size=t.batch_size, augmenter=augmenter, seed=t.seed,
            replicas=strategy.num_replicas_in_sync,
        )
        val_ds = augment.eval_pipeline(
            data.images_rgb, data.labels, split.test if val_idx is None else val_idx, batch_size=t.batch_size
        )
        log.info("distribution: %s, %d replica(s)", t.strategy, strategy.num_replicas_in_sync)
        with strategy.scope():
            # Steps 4-6: MobileNetV2 + ImageNet weights, the classic head, base frozen in inference mode.
            clf = model.build_classifier(t.image_size, base_weights, data.n_classes)
            # Step 7: binary (3 classes: categorical) cross-entropy, Adam with the classic decay as a schedule.
            model.compile_classifier(
                clf, learning_rate=t.learning_rate, decay_rate=t.learning_rate / t.epochs
            )
        log.info("model: %d weights, %d trainable", clf.count_params(), _n_trainable(clf))

        # Step 8: train on the augmented data, keeping the best epoch by validation loss.
        val = (val_ds, data.labels[split.test if val_idx is None else val_idx], strategy.num_replicas_in_sync > 1)
        history = _fit(clf, train_ds, val, run_dir, "frozen", t.epochs, len(fit_idx), cfg, progress, weights)
        phases: dict[str, Any] = {"frozen": {"epochs": len(history["loss"]), "history": history}}
        test_ds = augment.eval_pipeline(data.images_rgb, data.labels, split.test, batch_size=t.batch_size)
        # Steps 9-10: predict the test set, threshold, score.
        result = _evaluate(clf, test_ds, data.labels[split.test], cfg.classifier.threshold)
        phases["frozen"]["metrics"] = evaluate.summary_metrics(result)

        if t.fine_tune_layers > 0 and t.fine_tune_epochs > 0:
            with strategy.scope():
                n = model.unfreeze_top(clf, t.fine_tune_layers)
                model.compile_classifier(clf, learning_rate=t.learning_rate * FINE_TUNE_LR_SHARE)
            log.info("fine-tuning: %d base layers with weights unfrozen (batch-norm stays frozen)", n)
            ft_history = _fit(
                clf, train_ds, val, run_dir, "fine_tune", t.fine_tune_epochs, len(fit_idx), cfg, progress, weights
            )
            result = _evaluate(clf, test_ds, data.labels[split.test], cfg.classifier.threshold)
            phases["fine_tune"] = {
                "epochs": len(ft_history["loss"]),
                "unfrozen_layers": n,
                "history": ft_history,
                "metrics": evaluate.summary_metrics(result),
            }
            history = {k: history.get(k, []) + ft_history.get(k, []) for k in history}

        _write_reports(run_dir, result, phases, named_weights)
        # Step 11: plots.
        plots.plot_history(history, run_dir / "history.png", title="Mask classifier")
        plots.plot_confusion(result["confusion_matrix"]["matrix"], result["class_names"], run_dir / "confusion.png")
        if data.n_classes == 2:
            plots.plot_roc(result["roc_curve"]["fpr"], result["roc_curve"]["tpr"], result["roc_auc"],
                           run_dir / "roc.png")  # fmt: skip
        else:
            plots.plot_roc_one_vs_rest(result["roc_curves"], result["roc_auc_per_class"], run_dir / "roc.png")

        # Step 12: save .keras, .h5, .tflite and the model card, atomically, card last.
        from train.export import save_classifier

        metrics = evaluate.summary_metrics(result)
        card = {
            "threshold": cfg.classifier.threshold,
            "metrics": metrics,
            "phases": {name: p["metrics"] for name, p in phases.items()},
            "class_weight": named_weights,
            "dataset": {
                "path": str(Path(dataset_dir).resolve()),
                **data.summary(),
                "split": _split_counts(data, split),
            },
            "config": cfg.to_dict(),
            "run_dir": str(run_dir),
        }
        target = cfg.classifier_stem(output=True)
        stem = run_model_stem(run_dir, target.name)
        paths = save_classifier(clf, stem, card, tflite=EXPORT_TFLITE)
        log.info("saved %s", ", ".join(str(p) for p in paths.values()))
        install_info = _install(cfg, stem, target, run_dir, data, split, install, force)
        result = RunResult(run_dir, paths, split, history, metrics, phases, install_info)
    except BaseException as exc:  # the run log says how it ended (the console has the error line already)
        _log_end(file_log, exc)
        raise
    finally:
        logging.getLogger().removeHandler(file_log)
        file_log.close()
    if file_log.error is not None:  # the run went on without its log (a full disk): one error line now
        raise file_log.error
    return result


def _install(
    cfg: Config, stem: Path, target: Path, run_dir: Path, data: dataset.Dataset, split: dataset.Split,
    install: bool, force: bool,
) -> dict[str, Any]:
    """Compare with the installed model on the test split and install when asked and not worse."""
    if not install and not force:
        line = f"the new model is in {stem.parent}; the detector's model {target} is unchanged (install: --install)"
        print(line)
        return {"installed": False, "reason": "not asked", "line": line}
    from train.install import decide, describe, install_model, result_summary

    decision = decide(stem, target, data.images_rgb[split.test], data.labels[split.test], force=force)
    if decision.install:
        install_model(stem, target, run_dir / "replaced_model")
    line = describe(decision, stem, target)
    print(line)  # once (install.json keeps it)
    info = {**result_summary(decision), "line": line}
    write_json_atomic(run_dir / "install.json", jsonable(info))
    return info


def _check_writable(cfg: Config, install: bool) -> None:
    """``UserError`` if the run folder (and with ``install`` the detector's model folder) cannot be written."""
    check_writable("paths.runs_dir", cfg.output_path(cfg.paths.runs_dir))
    if install:
        check_writable("classifier.model", cfg.classifier_stem(output=True).parent)


def _base_weights(cfg: Config) -> Path:
    """Step 4's ImageNet weights from the offline-capable resolver (caches, URLs, pip fallback)."""
    from models.assets import resolve

    return resolve("mobilenetv2_weights", cfg)


def _validation_split(
    data: dataset.Dataset, split: dataset.Split, cfg: Config
) -> tuple[np.ndarray, np.ndarray | None]:
    """Training indices used for fitting and, with ``train.val_split`` > 0, a validation part carved from them."""
    if cfg.train.val_split <= 0:
        return split.train, None  # classic: the test set doubles as validation data
    try:
        inner = dataset.split_dataset(
            data.labels[split.train],
            [data.groups[i] for i in split.train],
            test_fraction=cfg.train.val_split,
            seed=cfg.train.seed + 1,
        )
    except UserError as exc:
        raise UserError(f"train.val_split={cfg.train.val_split:g}: no validation set can be carved from the "
                        f"{len(split.train)} training images ({exc})") from None
    return split.train[inner.train], split.train[inner.test]


def _fit(
    clf: Any, train_ds: Any, val: tuple[Any, np.ndarray, bool], run_dir: Path, phase: str, epochs: int,
    n_train: int, cfg: Config, progress: bool, class_weight: dict[int, float] | None = None,
) -> dict[str, list[float]]:
    """``val`` = (dataset, labels, by_predict): validation through ``predict`` when several replicas run;
    ``class_weight`` (label -> loss weight) weighs the training loss only."""
    import keras

    val_ds, val_labels, by_predict = val
    best = run_dir / f"best_{phase}.weights.h5"
    throughput = throughput_callback(n_train)
    callbacks = [
        throughput,
        *([predict_validation_callback(val_ds, val_labels)] if by_predict else []),  # before what reads val_loss
        best_weights_callback(best),
        keras.callbacks.CSVLogger(str(run_dir / f"history_{phase}.csv")),
    ]
    if cfg.train.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.train.early_stopping_patience))
    log.info("phase %s: %d epoch(s), batch size %d, %d training images", phase, epochs, cfg.train.batch_size, n_train)
    hist = clf.fit(
        train_ds,
        validation_data=None if by_predict else val_ds,
        epochs=epochs,
        callbacks=callbacks,
        class_weight=class_weight,
        shuffle=False,  # the tf.data pipeline shuffles (seeded) itself
        verbose="auto" if progress else 2,
    )
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    if best.exists():
        clf.load_weights(best)
        epoch = int(np.argmin(history["val_loss"])) + 1
        log.info("phase %s: kept epoch %d (lowest val_loss %.4f)", phase, epoch, min(history["val_loss"]))
    ips = throughput.images_per_s
    log.info("phase %s: training throughput %s images/s per epoch", phase, ", ".join(f"{v:.1f}" for v in ips))
    return history


def _evaluate(clf: Any, test_ds: Any, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    probs = clf.predict(test_ds, verbose=0)
    result = evaluate.evaluate(labels, probs[:, 0] if probs.shape[1] == 1 else probs, threshold)
    print(result["report_text"])
    log.info("test accuracy %.4f, ROC-AUC %s", result["accuracy"], result["roc_auc"])
    return result


def _write_reports(
    run_dir: Path, result: dict[str, Any], phases: dict[str, Any], class_weight: dict[str, float] | None
) -> None:
    cm = result["confusion_matrix"]["matrix"]
    lines = [
        result["report_text"],
        f"confusion matrix (rows true, columns predicted; {', '.join(result['class_names'])}):",
        *(f"  {row}" for row in cm),
        f"ROC-AUC: {result['roc_auc']}",
        f"threshold: {result['threshold']}",
        f"class weights: {class_weight or 'none'}",
    ]
    write_text_atomic(run_dir / "report.txt", "\n".join(lines) + "\n")
    write_json_atomic(run_dir / "report.json", jsonable({**result, "phases": phases, "class_weight": class_weight}))


def _named_weights(data: dataset.Dataset, weights: dict[int, float] | None) -> dict[str, float] | None:
    """``{"no_mask": w0, "mask": w1, ...}`` for logs, report and card (None: unweighted)."""
    return None if weights is None else {data.class_names[k]: round(w, 6) for k, w in weights.items()}


def _split_counts(data: dataset.Dataset, split: dataset.Split) -> dict[str, Any]:
    def counts(idx: np.ndarray) -> dict[str, int]:
        names = (("mask", 1), ("no_mask", 0), ("incorrect", 2))[: data.n_classes]
        return {name: int((data.labels[idx] == label).sum()) for name, label in names}

    return {"train": counts(split.train), "test": counts(split.test)}


def _split_record(
    data: dataset.Dataset, split: dataset.Split, fit_idx: np.ndarray, val_idx: np.ndarray | None, root: str | Path
) -> dict[str, Any]:
    def rel(idx: np.ndarray) -> list[str]:
        return [data.files[i].relative_to(root).as_posix() for i in idx]

    return {
        "train": rel(fit_idx),
        "validation": rel(val_idx) if val_idx is not None else "the test set",
        "test": rel(split.test),
        "skipped": dict(sorted(data.skipped.items())),
    }


def _log_split(data: dataset.Dataset, split: dataset.Split, separate_val: bool) -> None:
    c = _split_counts(data, split)
    log.info(
        "%d images (%d groups): train %s, test %s; validation: %s",
        len(data.labels), len(set(data.groups)), c["train"], c["test"],
        "carved from train" if separate_val else "the test set (classic)",
    )


def _n_trainable(clf: Any) -> int:
    return int(sum(np.prod(w.shape) for w in clf.trainable_weights))


def _log_end(handler: _RunLog, exc: BaseException) -> None:
    """One last line in the run log only: ``interrupted`` or ``stopped: <why>`` (a full disk: nothing)."""
    why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "stopped: " + (" ".join(str(exc).split()) or
                                                                                 type(exc).__name__)
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "%s", (why,), None)
    with contextlib.suppress(OSError):  # not handler.handle: logging prints its own traceback when a write fails
        handler.stream.write(handler.format(record) + "\n")
        handler.flush()


class _RunLog(logging.FileHandler):
    """``train.log``. A failed write (full disk) printed logging's traceback for every line, and the close at the
    end raised an error naming no file: the first failure is kept in ``error`` (naming the log), nothing more is
    written, and ``train_run`` raises it when the run ends."""

    error: OSError | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.error is None:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)
        elif self.error is None:
            self._keep(exc)

    def close(self) -> None:
        try:
            super().close()
        except OSError as exc:  # its last buffered lines did not fit
            if self.error is None:
                self._keep(exc)

    def _keep(self, exc: OSError) -> None:
        exc.filename = exc.filename or self.baseFilename
        self.error = exc


def _log_to_file(path: Path) -> _RunLog:
    handler = _RunLog(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    package_log = logging.getLogger("train")
    if package_log.getEffectiveLevel() > logging.INFO:
        package_log.setLevel(logging.INFO)  # the run log keeps INFO even when the caller set no logging up
    return handler
