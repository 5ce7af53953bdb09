"""The GLUE benchmark through TensorFlow Datasets."""

import collections

GlueTask = collections.namedtuple(
    "GlueTask", "tfds_name text_keys num_classes metrics validation_splits"
)

# num_classes 1 = regression (STS-B). The first metric picks the best epoch.
GLUE_TASKS = {
    "cola": GlueTask("glue/cola", ("sentence",), 2, ("matthews_correlation",), ("validation",)),
    "sst2": GlueTask("glue/sst2", ("sentence",), 2, ("accuracy",), ("validation",)),
    "mrpc": GlueTask(
        "glue/mrpc", ("sentence1", "sentence2"), 2, ("f1", "accuracy"), ("validation",)
    ),
    "qqp": GlueTask("glue/qqp", ("question1", "question2"), 2, ("f1", "accuracy"), ("validation",)),
    "stsb": GlueTask(
        "glue/stsb", ("sentence1", "sentence2"), 1, ("pearson", "spearman"), ("validation",)
    ),
    "mnli": GlueTask(
        "glue/mnli",
        ("premise", "hypothesis"),
        3,
        ("accuracy",),
        ("validation_matched", "validation_mismatched"),
    ),
    "qnli": GlueTask("glue/qnli", ("question", "sentence"), 2, ("accuracy",), ("validation",)),
    "rte": GlueTask("glue/rte", ("sentence1", "sentence2"), 2, ("accuracy",), ("validation",)),
    "wnli": GlueTask("glue/wnli", ("sentence1", "sentence2"), 2, ("accuracy",), ("validation",)),
}


def glue_task(name):
    if name not in GLUE_TASKS:
        raise ValueError(f"Unknown GLUE task {name!r}; expected one of {sorted(GLUE_TASKS)}.")
    return GLUE_TASKS[name]


def load_glue(name, split, data_dir=None):
    """A GLUE split as a `tf.data.Dataset` of `(texts, label)`: `texts` a
    string (single-sentence tasks) or a pair of strings; labels int32, or
    float32 for STS-B."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    task = glue_task(name)
    dataset = tfds.load(task.tfds_name, split=split, data_dir=data_dir, shuffle_files=False)
    label_dtype = "float32" if task.num_classes == 1 else "int32"

    def convert(example):
        texts = tuple(example[k] for k in task.text_keys)
        return (texts[0] if len(texts) == 1 else texts), tf.cast(example["label"], label_dtype)

    return dataset.map(convert)
