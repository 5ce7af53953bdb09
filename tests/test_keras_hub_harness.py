"""keras-hub's own test harness (`keras_hub.src.tests.test_case.TestCase`) on
every public layer, the backbone, every task, preprocessor and the tokenizer,
as keras-hub tests its model families (`keras_hub/src/models/bert/*_test.py`):
serialization round trips, symbolic and eager calls, compiled training,
`tf.data` and Grain pipelines, mixed-precision policies reaching every
sublayer, quantization, and saving as `.keras`.

Expected token ids are worked out by hand from the fixture vocabulary:
[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 the=5 a=6 was=9 and=12 movie=16
film=17 good=18 bad=19 great=20 plot=21 story=23 funny=24 boring=25 .=33 !=35
"""

import numpy as np
import tensorflow as tf
from keras import ops
from keras_hub.src.tests import test_case
from support import SHALLOW
from support import VOCAB

from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertEncoderLayer
from convbert_keras import ConvBertMaskedLM
from convbert_keras import ConvBertMaskedLMPreprocessor
from convbert_keras import ConvBertMultipleChoice
from convbert_keras import ConvBertMultipleChoicePreprocessor
from convbert_keras import ConvBertQuestionAnswerer
from convbert_keras import ConvBertQuestionAnswererPreprocessor
from convbert_keras import ConvBertTextClassifier
from convbert_keras import ConvBertTextClassifierPreprocessor
from convbert_keras import ConvBertTokenClassifier
from convbert_keras import ConvBertTokenClassifierPreprocessor
from convbert_keras import ConvBertTokenizer
from convbert_keras import GroupedDense
from convbert_keras import HashDropout
from convbert_keras import MixedAttention
from convbert_keras import SpanDynamicConv

BATCH, LENGTH, WIDTH = 2, 6, 16


class TestCase(test_case.TestCase):
    # tf.test.TestCase's deprecated session helper, which pytest would
    # collect and report as skipped: not a test.
    test_session = None


# Backend tensors, as keras-hub's tests pass: Keras works out the shapes for
# `compute_output_spec` from tensor arguments only.
def hidden_states():
    rng = np.random.default_rng(0)
    return ops.convert_to_tensor(rng.normal(size=(BATCH, LENGTH, WIDTH)).astype("float32"))


def padding_mask():
    return ops.convert_to_tensor(np.array([[1] * LENGTH, [1] * 4 + [0] * 2], dtype="int32"))


class LayersTest(TestCase):
    def test_span_dynamic_conv(self):
        # Key depthwise taps, then kernel and bias of the key pointwise, the
        # kernel generator and the value Dense layers; one output per head.
        self.run_layer_test(
            cls=SpanDynamicConv,
            init_kwargs={"num_heads": 2, "head_dim": 4, "kernel_size": 3},
            input_data={
                "hidden_states": hidden_states(),
                "query": hidden_states()[..., :8],
                "padding_mask": padding_mask(),
            },
            expected_output_shape=(BATCH, LENGTH, 2, 4),
            expected_num_trainable_weights=7,
        )

    def test_span_dynamic_conv_without_spans(self):
        self.run_layer_test(
            cls=SpanDynamicConv,
            init_kwargs={"num_heads": 2, "head_dim": 4, "kernel_size": 3, "conv_type": "dynamic"},
            input_data={"hidden_states": hidden_states(), "query": hidden_states()[..., :8]},
            expected_output_shape=(BATCH, LENGTH, 2, 4),
            expected_num_trainable_weights=4,
        )

    def test_mixed_attention(self):
        # Half the heads attend, half convolve (head_ratio 2): the query,
        # key, value and output Dense pairs and the span convolution's 7.
        self.run_layer_test(
            cls=MixedAttention,
            init_kwargs={"num_heads": 4, "conv_kernel_size": 3},
            input_data={"hidden_states": hidden_states(), "padding_mask": padding_mask()},
            expected_output_shape=(BATCH, LENGTH, WIDTH),
            expected_num_trainable_weights=15,
        )

    def test_grouped_dense(self):
        self.run_layer_test(
            cls=GroupedDense,
            init_kwargs={"units": 8, "num_groups": 2},
            input_data=hidden_states(),
            expected_output_shape=(BATCH, LENGTH, 8),
            expected_num_trainable_weights=2,
        )

    def test_encoder_layer(self):
        # Attention's 15 and its norm (2), the feed-forward pair of grouped
        # Dense layers (4) and its norm (2).
        self.run_layer_test(
            cls=ConvBertEncoderLayer,
            init_kwargs={
                "num_heads": 4,
                "intermediate_dim": 32,
                "conv_kernel_size": 3,
                "num_groups": 2,
            },
            input_data={"hidden_states": hidden_states(), "padding_mask": padding_mask()},
            expected_output_shape=(BATCH, LENGTH, WIDTH),
            expected_num_trainable_weights=23,
        )

    def test_hash_dropout(self):
        # Inference passes values through: the eager output is the input.
        # Its one variable is the seed generator's state.
        self.run_layer_test(
            cls=HashDropout,
            init_kwargs={"rate": 0.5},
            input_data=hidden_states(),
            expected_output_shape=(BATCH, LENGTH, WIDTH),
            expected_output_data=hidden_states(),
            expected_num_non_trainable_variables=1,
            run_training_check=False,
        )


def token_inputs():
    return {
        "token_ids": ops.convert_to_tensor(
            np.array([[2, 5, 16, 9, 18, 3], [2, 6, 17, 3, 0, 0]], dtype="int32")
        ),
        "segment_ids": ops.zeros((BATCH, LENGTH), dtype="int32"),
        "padding_mask": padding_mask(),
    }


class BackboneTest(TestCase):
    def setUp(self):
        super().setUp()
        self.init_kwargs = dict(SHALLOW, conv_kernel_size=3, num_groups=2)

    def test_backbone_basics(self):
        self.run_backbone_test(
            cls=ConvBertBackbone,
            init_kwargs=self.init_kwargs,
            input_data=token_inputs(),
            expected_output_shape={
                "sequence_output": (BATCH, LENGTH, SHALLOW["hidden_dim"]),
                "pooled_output": (BATCH, SHALLOW["hidden_dim"]),
            },
        )

    def test_saved_model(self):
        self.run_model_saving_test(
            cls=ConvBertBackbone, init_kwargs=self.init_kwargs, input_data=token_inputs()
        )


def tokenizer():
    return ConvBertTokenizer(vocabulary=VOCAB)


class TokenizerTest(TestCase):
    def test_tokenizer_basics(self):
        self.run_preprocessing_layer_test(
            cls=ConvBertTokenizer,
            init_kwargs={"vocabulary": VOCAB},
            input_data=["the movie was good.", "a boring plot!"],
            expected_output=[[5, 16, 9, 18, 33], [6, 25, 21, 35]],
            # Detokenized as word pieces joined by spaces.
            expected_detokenize_output=["the movie was good .", "a boring plot !"],
        )


def backbone():
    return ConvBertBackbone(**dict(SHALLOW, conv_kernel_size=3))


def classifier_preprocessor(sequence_length=8):
    return ConvBertTextClassifierPreprocessor(tokenizer(), sequence_length=sequence_length)


class TextClassifierPreprocessorTest(TestCase):
    def setUp(self):
        super().setUp()
        self.init_kwargs = {"tokenizer": tokenizer(), "sequence_length": 8}
        # Labels and sample weights pass through.
        self.input_data = (["the movie was good.", "a boring plot!"], [1, 0], [1.0, 0.5])

    def test_preprocessor_basics(self):
        self.run_preprocessor_test(
            cls=ConvBertTextClassifierPreprocessor,
            init_kwargs=self.init_kwargs,
            input_data=self.input_data,
            expected_output=(
                {
                    "token_ids": [[2, 5, 16, 9, 18, 33, 3, 0], [2, 6, 25, 21, 35, 3, 0, 0]],
                    "segment_ids": [[0] * 8, [0] * 8],
                    "padding_mask": [[1] * 7 + [0], [1] * 6 + [0] * 2],
                },
                [1, 0],
                [1.0, 0.5],
            ),
        )

    def test_pairs(self):
        pair = (["the movie"], ["was good"])
        x = ConvBertTextClassifierPreprocessor(**self.init_kwargs)(x=pair)
        self.assertAllEqual(x["token_ids"], [[2, 5, 16, 3, 9, 18, 3, 0]])
        self.assertAllEqual(x["segment_ids"], [[0, 0, 0, 0, 1, 1, 1, 0]])


class TextClassifierTest(TestCase):
    def setUp(self):
        super().setUp()
        self.preprocessor = classifier_preprocessor()
        self.init_kwargs = {
            "preprocessor": self.preprocessor,
            "backbone": backbone(),
            "num_classes": 2,
        }
        self.train_data = (["the movie was good.", "a boring plot!"], [1, 0])
        self.input_data = self.preprocessor(*self.train_data)[0]

    def test_classifier_basics(self):
        self.run_task_test(
            cls=ConvBertTextClassifier,
            init_kwargs=self.init_kwargs,
            train_data=self.train_data,
            expected_output_shape=(2, 2),
        )

    def test_saved_model(self):
        self.run_model_saving_test(
            cls=ConvBertTextClassifier, init_kwargs=self.init_kwargs, input_data=self.input_data
        )


class MaskedLMPreprocessorTest(TestCase):
    def setUp(self):
        super().setUp()
        # Every piece selected and masked: the output is fixed.
        self.init_kwargs = {
            "tokenizer": tokenizer(),
            "sequence_length": 8,
            "mask_selection_rate": 1.0,
            "mask_token_rate": 1.0,
            "random_token_rate": 0.0,
            "mask_selection_length": 5,
        }
        self.input_data = ["the movie was good."]

    def test_preprocessor_basics(self):
        self.run_preprocessor_test(
            cls=ConvBertMaskedLMPreprocessor,
            init_kwargs=self.init_kwargs,
            input_data=self.input_data,
            expected_output=(
                {
                    "token_ids": [[2, 4, 4, 4, 4, 4, 3, 0]],
                    "segment_ids": [[0] * 8],
                    "padding_mask": [[1] * 7 + [0]],
                    "mask_positions": [[1, 2, 3, 4, 5]],
                },
                [[5, 16, 9, 18, 33]],
                [[1.0] * 5],
            ),
        )


class MaskedLMTest(TestCase):
    def setUp(self):
        super().setUp()
        # Every piece masked, as keras-hub's tests do: predicting the same
        # texts twice (directly, through tf.data) gives the same masks.
        self.preprocessor = ConvBertMaskedLMPreprocessor(
            tokenizer(),
            sequence_length=8,
            mask_selection_rate=1.0,
            mask_token_rate=1.0,
            random_token_rate=0.0,
            mask_selection_length=5,
        )
        self.init_kwargs = {"preprocessor": self.preprocessor, "backbone": backbone()}
        self.train_data = (["the movie was good.", "a boring plot!"],)
        self.input_data = self.preprocessor(*self.train_data)[0]

    def test_masked_lm_basics(self):
        self.run_task_test(
            cls=ConvBertMaskedLM,
            init_kwargs=self.init_kwargs,
            train_data=self.train_data,
            expected_output_shape=(2, 5, SHALLOW["vocabulary_size"]),
        )

    def test_saved_model(self):
        self.run_model_saving_test(
            cls=ConvBertMaskedLM, init_kwargs=self.init_kwargs, input_data=self.input_data
        )


def words_and_tags():
    import tensorflow as tf

    # "movies" is two pieces (movie ##s): its tag goes to the first.
    words = tf.ragged.constant([["the", "movies", "was", "good"], ["a", "boring", "plot"]])
    tags = tf.ragged.constant([[0, 1, 0, 2], [0, 2, 1]])
    return words, tags


class TokenClassifierPreprocessorTest(TestCase):
    def setUp(self):
        super().setUp()
        self.init_kwargs = {"tokenizer": tokenizer(), "sequence_length": 8}
        self.input_data = words_and_tags()

    def test_preprocessor_basics(self):
        self.run_preprocessor_test(
            cls=ConvBertTokenClassifierPreprocessor,
            init_kwargs=self.init_kwargs,
            input_data=self.input_data,
            expected_output=(
                {
                    "token_ids": [[2, 5, 16, 30, 9, 18, 3, 0], [2, 6, 25, 21, 3, 0, 0, 0]],
                    "segment_ids": [[0] * 8, [0] * 8],
                    "padding_mask": [[1] * 7 + [0], [1] * 5 + [0] * 3],
                },
                [[0, 0, 1, 0, 0, 2, 0, 0], [0, 0, 2, 1, 0, 0, 0, 0]],
                # Only first pieces count.
                [[0, 1, 1, 0, 1, 1, 0, 0], [0, 1, 1, 1, 0, 0, 0, 0]],
            ),
        )


class TokenClassifierTest(TestCase):
    def setUp(self):
        super().setUp()
        self.preprocessor = ConvBertTokenClassifierPreprocessor(tokenizer(), sequence_length=8)
        self.init_kwargs = {
            "preprocessor": self.preprocessor,
            "backbone": backbone(),
            "num_classes": 3,
        }
        self.train_data = words_and_tags()
        self.input_data = self.preprocessor(*self.train_data)[0]

    def test_token_classifier_basics(self):
        self.run_task_test(
            cls=ConvBertTokenClassifier,
            init_kwargs=self.init_kwargs,
            train_data=self.train_data,
            expected_output_shape=(2, 8, 3),
        )

    def test_saved_model(self):
        self.run_model_saving_test(
            cls=ConvBertTokenClassifier, init_kwargs=self.init_kwargs, input_data=self.input_data
        )


def questions_and_answers():
    # "good" starts at character 14 of the first context, "boring" at 2.
    x = (["was it good?", "a film?"], ["the movie was good.", "a boring film."])
    y = ([14, 2], ["good", "boring"])
    return x, y


class QuestionAnswererPreprocessorTest(TestCase):
    def setUp(self):
        super().setUp()
        self.init_kwargs = {
            "tokenizer": tokenizer(),
            "sequence_length": 16,
            "doc_stride": 8,
            "max_query_length": 4,
        }
        self.input_data = questions_and_answers()

    def test_preprocessor_basics(self):
        # [CLS] was it good ? [SEP] the movie was good . [SEP], and
        # [CLS] a film ? [SEP] a boring film . [SEP]; each answer's first
        # and last pieces, counted in its window.
        expected = (
            {
                "token_ids": [
                    [2, 9, 14, 18, 36, 3, 5, 16, 9, 18, 33, 3, 0, 0, 0, 0],
                    [2, 6, 17, 36, 3, 6, 25, 17, 33, 3, 0, 0, 0, 0, 0, 0],
                ],
                "segment_ids": [[0] * 6 + [1] * 6 + [0] * 4, [0] * 5 + [1] * 5 + [0] * 6],
                "padding_mask": [[1] * 12 + [0] * 4, [1] * 10 + [0] * 6],
            },
            [[9, 9], [6, 6]],
        )
        # The harness's checks but one: an example gives as many rows as
        # its context needs windows, so one example's output has a windows
        # axis of its own and a tf.data map over unbatched examples is
        # `unbatch()`ed, not `ragged_batch`ed (checked below).
        cls = ConvBertQuestionAnswererPreprocessor
        layer = cls(**self.init_kwargs)
        self.run_serialization_test(layer)
        output = layer(*self.input_data)
        self.assertAllClose(output, expected)
        batched = tf.data.Dataset.from_tensor_slices(self.input_data).batch(8).map(layer)
        self.assertAllClose(batched.get_single_element(), expected)
        unbatched = tf.data.Dataset.from_tensor_slices(self.input_data).map(layer).unbatch()
        self.assertAllClose(unbatched.batch(8).get_single_element(), expected)
        # Imported here, after keras-hub: see tests/startup.
        import grain

        grain_batched = grain.MapDataset.source([self.input_data]).map(lambda x: layer(*x))
        (grain_output,) = list(grain_batched)
        # NumPy, not tensors, inside Grain (its workers pickle elements).
        test_case.assert_grain_safe_types(grain_output)
        self.assertAllClose(grain_output, expected)
        layer.sequence_length = 17
        self.assertEqual(layer(*self.input_data)[0]["token_ids"].shape, (2, 17))

    def test_long_contexts_give_several_windows(self):
        layer = ConvBertQuestionAnswererPreprocessor(**self.init_kwargs, name="windows")
        long_context = " ".join(["the movie was good."] * 4)
        x, y = layer(x=(["was it good?"], [long_context]), y=([14], ["good"]))
        # 20 context pieces; a window holds 9 (16 less [CLS], two [SEP] and
        # the question's 4) and starts 8 after the previous one: the second
        # begins at piece 8, "good . the movie was ...".
        self.assertEqual(x["token_ids"].shape, (3, 16))
        self.assertAllEqual(x["token_ids"][1][6:11], [18, 33, 5, 16, 9])


class QuestionAnswererTest(TestCase):
    def setUp(self):
        super().setUp()
        self.preprocessor = ConvBertQuestionAnswererPreprocessor(
            tokenizer(), sequence_length=16, doc_stride=8, max_query_length=4
        )
        self.init_kwargs = {"preprocessor": self.preprocessor, "backbone": backbone()}
        self.train_data = questions_and_answers()
        self.input_data = self.preprocessor(*self.train_data)[0]

    def test_question_answerer_basics(self):
        # Start and end logits for each position of each window.
        self.run_task_test(
            cls=ConvBertQuestionAnswerer,
            init_kwargs=self.init_kwargs,
            train_data=self.train_data,
            expected_output_shape=(2, 2, 16),
        )

    def test_saved_model(self):
        self.run_model_saving_test(
            cls=ConvBertQuestionAnswerer, init_kwargs=self.init_kwargs, input_data=self.input_data
        )


def prompts_and_choices():
    return (["the movie was", "a film and"], [["good", "bad"], ["a story", "boring"]]), [0, 1]


class MultipleChoicePreprocessorTest(TestCase):
    def setUp(self):
        super().setUp()
        self.init_kwargs = {"tokenizer": tokenizer(), "sequence_length": 8}
        self.input_data = prompts_and_choices()

    def test_preprocessor_basics(self):
        # [CLS] prompt [SEP] choice [SEP] for each choice; the label passes.
        self.run_preprocessor_test(
            cls=ConvBertMultipleChoicePreprocessor,
            init_kwargs=self.init_kwargs,
            input_data=self.input_data,
            expected_output=(
                {
                    "token_ids": [
                        [[2, 5, 16, 9, 3, 18, 3, 0], [2, 5, 16, 9, 3, 19, 3, 0]],
                        [[2, 6, 17, 12, 3, 6, 23, 3], [2, 6, 17, 12, 3, 25, 3, 0]],
                    ],
                    "segment_ids": [
                        [[0] * 5 + [1] * 2 + [0], [0] * 5 + [1] * 2 + [0]],
                        [[0] * 5 + [1] * 3, [0] * 5 + [1] * 2 + [0]],
                    ],
                    "padding_mask": [
                        [[1] * 7 + [0], [1] * 7 + [0]],
                        [[1] * 8, [1] * 7 + [0]],
                    ],
                },
                [0, 1],
            ),
        )


class MultipleChoiceTest(TestCase):
    def setUp(self):
        super().setUp()
        self.preprocessor = ConvBertMultipleChoicePreprocessor(tokenizer(), sequence_length=8)
        self.init_kwargs = {"preprocessor": self.preprocessor, "backbone": backbone()}
        self.train_data = prompts_and_choices()
        self.input_data = self.preprocessor(*self.train_data)[0]

    def test_multiple_choice_basics(self):
        self.run_task_test(
            cls=ConvBertMultipleChoice,
            init_kwargs=self.init_kwargs,
            train_data=self.train_data,
            expected_output_shape=(2, 2),
        )

    def test_saved_model(self):
        self.run_model_saving_test(
            cls=ConvBertMultipleChoice, init_kwargs=self.init_kwargs, input_data=self.input_data
        )
