"""SQuAD v1.1 and v2.0 through TensorFlow Datasets."""

SQUAD_VERSIONS = {"squad_v1": "squad/v1.1", "squad_v2": "squad/v2.0"}


def load_squad(version, split, data_dir=None):
    """A SQuAD split as `((question, context), (answer_start, answer_text))`
    for training (the first gold answer; start -1 and "" when there is none),
    plus, per example, the list of all gold answer texts for scoring.

    Returns `(dataset, gold_answers)`; `gold_answers` is read eagerly.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if version not in SQUAD_VERSIONS:
        raise ValueError(
            f"Unknown SQuAD version {version!r}; expected one of {sorted(SQUAD_VERSIONS)}."
        )
    dataset = tfds.load(
        SQUAD_VERSIONS[version], split=split, data_dir=data_dir, shuffle_files=False
    )

    def convert(example):
        answers = example["answers"]
        has_answer = tf.size(answers["text"]) > 0
        start = tf.cond(
            has_answer,
            lambda: tf.cast(answers["answer_start"][0], "int64"),
            lambda: tf.constant(-1, "int64"),
        )
        text = tf.cond(has_answer, lambda: answers["text"][0], lambda: tf.constant(""))
        return (example["question"], example["context"]), (start, text)

    gold = [
        [t.decode("utf-8") for t in example["answers"]["text"]]
        for example in tfds.as_numpy(dataset)
    ]
    return dataset.map(convert), gold
