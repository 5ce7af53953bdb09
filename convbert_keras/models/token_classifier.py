import keras
import numpy as np
from keras_hub.models import Task

from convbert_keras import metrics as official
from convbert_keras.distribute import ReplicaXlaSteps
from convbert_keras.layers.dropout import HashDropout
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.convbert_task import WARMUP_TEXTS
from convbert_keras.models.convbert_task import ConvBertTask
from convbert_keras.models.convbert_task import hf_num_labels
from convbert_keras.models.convbert_task import string_spec
from convbert_keras.models.hf_weights import dense_pairs
from convbert_keras.models.labels import check_label_range
from convbert_keras.models.task_heads import logits_dense
from convbert_keras.models.token_classifier_preprocessor import ConvBertTokenClassifierPreprocessor
from convbert_keras.models.traced_preprocessing import TracedPreprocessing


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertTokenClassifier(ConvBertTask, TracedPreprocessing, ReplicaXlaSteps, Task):
    """Per-token classification (NER, POS tagging) on top of a ConvBERT.

    Dropout and `Dense(num_classes)` on every position of
    `sequence_output` (transformers' `ConvBertForTokenClassification`).
    Trained on word-level labels through
    `ConvBertTokenClassifierPreprocessor`, which puts each word's label on
    its first word piece. Compiles with XLA by default.

    Args:
        backbone: a `ConvBertBackbone`.
        num_classes: int. Number of tags.
        preprocessor: a `ConvBertTokenClassifierPreprocessor` or `None`.
        dropout: float. Dropout before the classifier.

    Inputs: a ragged batch of words through the preprocessor, or the
    backbone's dict. Outputs: `(batch, length, num_classes)` logits.

    Example:
    ```python
    tagger = ConvBertTokenClassifier.from_preset("preset_dir", num_classes=3)
    tagger.fit(x=tf.ragged.constant([["Paris", "is", "big"]]),
               y=tf.ragged.constant([[1, 0, 0]]), batch_size=1)
    tagger.predict_words([["Rome", "is", "old"]])  # a tag id per word: [[1, 0, 0]]
    ```
    """

    backbone_cls = ConvBertBackbone
    preprocessor_cls = ConvBertTokenClassifierPreprocessor
    hf_architecture = "ConvBertForTokenClassification"
    data_kind = "token_classification"

    def __init__(self, backbone, num_classes, preprocessor=None, dropout=0.1, **kwargs):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2. Received: {num_classes!r}")
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        policy = backbone.dtype_policy
        self.output_dropout = HashDropout(dropout, dtype=policy, name="output_dropout")
        self.output_dense = logits_dense(num_classes, policy)
        # === Functional model ===
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        outputs = self.output_dense(self.output_dropout(sequence))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        weighted_metrics="auto",
        jit_compile="auto",
        **kwargs,
    ):
        """Adam 5e-5, sparse cross-entropy on logits and accuracy, both
        weighted so that only first word pieces count; XLA on."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(5e-5)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if weighted_metrics == "auto":
            weighted_metrics = [keras.metrics.SparseCategoricalAccuracy()]
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            jit_compile=jit_compile,
            **kwargs,
        )

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if y is not None:
            y = check_label_range(y, self.num_classes)
        return super().preprocess_samples(x, y, sample_weight)

    def predict_words(self, words, batch_size=32):
        """Tag ids per word: a list (one per example) of lists of ints.

        `words` is a list of lists of strings. Words cut off by truncation
        get no tag.
        """
        import tensorflow as tf

        if self.preprocessor is None:
            raise ValueError("predict_words needs a preprocessor to split words.")
        ragged = tf.ragged.constant(words, dtype=tf.string)
        logits = self.predict(ragged, batch_size=batch_size, verbose=0)
        first = self.preprocessor.first_piece_mask(ragged).numpy()
        tags = np.argmax(logits, axis=-1)
        return [tags[i][first[i]].tolist() for i in range(len(words))]

    @classmethod
    def arguments_from_hf_config(cls, hf_config):
        return {"num_classes": hf_num_labels(hf_config)}

    @classmethod
    def arguments_for_data(cls, data, pooling="cls"):
        return {"num_classes": data.num_classes}

    def hf_head_weights(self):
        return dense_pairs(self.output_dense, "classifier")

    def serving_signatures(self, label_names=None, max_answer_length=30, allow_no_answer=False):
        """`serving_default` on `text`, split into words on white space (as
        `predict_words` takes them): `words`, `tags` (-1 past the last
        word), `num_words` and, given `label_names`, `tag_names`."""
        import tensorflow as tf

        def tag(text):
            words = tf.strings.split(text)
            logits = self(self.preprocessor(words), training=False)
            first = self.preprocessor.first_piece_mask(words)
            tags = tf.ragged.boolean_mask(tf.argmax(logits, axis=-1), first)
            padded_words = words.to_tensor("")
            width = tf.shape(padded_words, out_type="int64")[1]
            tags = tags.to_tensor(-1)
            tags = tf.pad(
                tags,
                [[0, 0], [0, width - tf.shape(tags, out_type="int64")[1]]],
                constant_values=-1,
            )
            result = {"words": padded_words, "tags": tags, "num_words": words.row_lengths()}
            if label_names:
                names = tf.concat([tf.constant(label_names), [""]], axis=0)
                result["tag_names"] = tf.gather(
                    names, tf.where(tags < 0, tf.cast(len(label_names), tags.dtype), tags)
                )
            return result

        return {"serving_default": (tag, [string_spec("text")])}

    def warmup_requests(self):
        return [("serving_default", {"text": WARMUP_TEXTS})]

    def training_batches(self, examples, batch_size):
        # Words and tags are ragged.
        return examples.ragged_batch(batch_size)

    def official_scores(self, examples, data, batch_size):
        """Entity precision, recall and F1 (seqeval's rules) of `(words,
        tag lists)`; words cut off by truncation count as `O`."""
        words, gold = examples
        predicted = self.predict_words(words, batch_size=batch_size)
        tags = data.label_names
        predicted = [
            [tags[i] for i in p] + ["O"] * (len(g) - len(p)) for p, g in zip(predicted, gold)
        ]
        return official.entity_f1(gold, predicted)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout})
        return config
