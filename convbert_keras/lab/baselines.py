"""Baselines that a ConvBERT result is read against."""

import numpy as np

from convbert_keras import metrics as official


def _texts(x):
    """Raw texts; the two texts of a pair joined by a space."""
    return [" ".join(pair) for pair in zip(*x)] if isinstance(x, tuple) else list(x)


def bag_of_words_baseline(
    data, epochs=100, learning_rate=0.05, l2=(1e-5, 1e-4, 1e-3, 1e-2), max_tokens=50000, seed=0
):
    """TF-IDF over word unigrams and bigrams with a logistic-regression
    layer, trained on the same labelled examples as the model it stands
    beside.

    One Keras model on raw strings (`TextVectorization` then `Dense`), no
    other dependency. The vocabulary and IDF weights come from the labelled
    training texts only; the L2 penalty and the epoch are chosen on
    `data.validation`'s first set by the task's first metric, and
    `data.test` (when given) is scored once with the chosen weights.

    Args:
        data: a classification `FinetuneData` with in-memory training
            data (`named_data`, `table_data`).
        epochs: epochs of full-batch Adam training of the logistic layer.
        learning_rate: its learning rate.
        l2: the L2 penalties to choose from.
        max_tokens: size of the n-gram vocabulary.
        seed: seeds the initial weights.

    Returns: `{"validation": scores, "test": scores or None, "epoch": n,
    "l2": penalty}`.

    Example:
    ```python
    from convbert_keras.data.finetune_data import named_data
    from convbert_keras.lab.baselines import bag_of_words_baseline

    data = named_data("rotten_tomatoes", max_train_examples=1000)
    scores = bag_of_words_baseline(data, epochs=20, l2=(1e-4,))  # one penalty, no search
    scores["test"]  # {"accuracy": ..., "f1": ...}
    ```
    """
    import keras
    import tensorflow as tf

    if data.kind != "classification" or not data.num_classes or data.num_classes < 2:
        raise ValueError(
            "The bag-of-words baseline is a classifier: it needs a classification task."
        )
    if isinstance(data.train, tf.data.Dataset):
        raise ValueError("The bag-of-words baseline needs in-memory training data.")
    keras.utils.set_random_seed(seed)
    x, y = data.train
    vectorizer = keras.layers.TextVectorization(
        max_tokens=max_tokens, ngrams=2, output_mode="tf_idf"
    )
    vectorizer.adapt(tf.constant(_texts(x)))

    def features(texts):
        return vectorizer(tf.constant(_texts(texts))).numpy()

    train_features, labels = features(x), np.asarray(y)
    validation = next(iter(data.validation.values()))
    validation = (features(validation[0]), validation[1])
    main = data.metrics[0]

    def scores(model, examples):
        inputs, gold = examples
        predicted = np.asarray(model.predict_on_batch(inputs)).argmax(-1)
        return {name: float(getattr(official, name)(gold, predicted)) for name in data.metrics}

    best = None
    for penalty in l2:
        model = keras.Sequential(
            [
                keras.Input((vectorizer.vocabulary_size(),)),
                keras.layers.Dense(
                    data.num_classes, kernel_regularizer=keras.regularizers.L2(penalty)
                ),
            ]
        )
        model.compile(
            keras.optimizers.Adam(learning_rate),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        for epoch in range(1, epochs + 1):
            # One full-batch step per epoch; `fit` would pay its per-call
            # set-up (callbacks, a new iterator) for each of them.
            model.train_on_batch(train_features, labels)
            current = scores(model, validation)
            if best is None or current[main] > best["validation"][main]:
                best = {
                    "epoch": epoch,
                    "l2": penalty,
                    "validation": current,
                    "model": model,
                    "weights": model.get_weights(),
                }
    model = best.pop("model")
    model.set_weights(best.pop("weights"))
    if data.test:
        texts, gold = next(iter(data.test.values()))
        best["test"] = scores(model, (features(texts), gold))
    else:
        best["test"] = None
    return best
