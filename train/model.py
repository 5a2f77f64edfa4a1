"""Steps 4-7: MobileNetV2 base (ImageNet weights, no top), the classic head, frozen base, compile.

The model takes raw RGB 0-255: ``Rescaling(1/127.5, offset=-1)`` (= mobilenet_v2.preprocess_input) is its first
layer. The head's AveragePooling2D covers the whole base feature map: 7x7 at 224 (image_size / 32 in general), so
smaller sizes (e.g. 64 or 96 in tests) work with the same code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BASE_NAME = "mobilenetv2_base"


def build_classifier(image_size: int, base_weights: Path | None, n_classes: int = 2) -> Any:
    """Input -> Rescaling -> MobileNetV2 (frozen, inference-mode BN) -> AvgPool -> Flatten -> 128 -> 0.5 -> output:
    Dense(1, sigmoid) P(mask) for 2 classes, Dense(3, softmax) over the labels 0, 1, 2 for 3."""
    import keras

    inputs = keras.Input((image_size, image_size, 3), name="image_rgb_0_255")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="mobilenet_v2_preprocess")(inputs)
    base = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(image_size, image_size, 3), name=BASE_NAME
    )
    if base_weights is not None:
        base.load_weights(base_weights)  # step 4: ImageNet weights from the asset resolver
    base.trainable = False  # step 6
    x = base(x, training=False)  # batch-norm stays in inference mode, also when fine-tuning
    pool = tuple(base.output_shape[1:3])  # (7, 7) at 224
    x = keras.layers.AveragePooling2D(pool_size=pool, name="head_pool")(x)  # step 5
    x = keras.layers.Flatten(name="head_flatten")(x)
    x = keras.layers.Dense(128, activation="relu", name="head_dense")(x)
    x = keras.layers.Dropout(0.5, name="head_dropout")(x)
    if n_classes == 2:
        outputs = keras.layers.Dense(1, activation="sigmoid", name="p_mask")(x)
    else:
        outputs = keras.layers.Dense(n_classes, activation="softmax", name="class_probs")(x)
    return keras.Model(inputs, outputs, name="mask_classifier")


def n_outputs_classes(model: Any) -> int:
    """2 for a one-output sigmoid model, else the softmax width."""
    width = int(model.output_shape[-1])
    return 2 if width == 1 else width


def compile_classifier(model: Any, *, learning_rate: float, decay_rate: float = 0.0) -> None:
    """Step 7: binary cross-entropy (sigmoid model) or categorical cross-entropy on integer labels (softmax model),
    Adam, accuracy; ``decay_rate`` > 0 gives lr / (1 + decay_rate * step).

    The classic ``Adam(lr=INIT_LR, decay=INIT_LR / EPOCHS)`` is ``decay_rate = learning_rate / epochs`` (Keras 2
    applied it per optimizer step; Keras 3 ignores ``decay=``, so it is an InverseTimeDecay schedule here).
    """
    import keras

    lr: Any = learning_rate
    if decay_rate > 0:
        lr = keras.optimizers.schedules.InverseTimeDecay(learning_rate, decay_steps=1, decay_rate=decay_rate)
    if n_outputs_classes(model) == 2:
        loss, metric = "binary_crossentropy", keras.metrics.BinaryAccuracy(name="accuracy")
    else:  # labels stay integers (n, 1): the sparse form of categorical cross-entropy
        loss, metric = "sparse_categorical_crossentropy", keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr), loss=loss, metrics=[metric])


def unfreeze_top(model: Any, n_layers: int) -> int:
    """Fine-tuning: make the top ``n_layers`` of the base trainable, batch-norm layers excepted; return how many."""
    import keras

    base = model.get_layer(BASE_NAME)
    base.trainable = True
    count = 0
    for i, layer in enumerate(base.layers):
        top = i >= len(base.layers) - n_layers
        layer.trainable = top and not isinstance(layer, keras.layers.BatchNormalization)
        count += int(layer.trainable and bool(layer.weights))
    return count
