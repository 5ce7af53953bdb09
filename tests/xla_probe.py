"""Runs one fit step or one predict of a tiny ConvBERT classifier.

Used by test_xla.py in a fresh process with XLA_FLAGS=--xla_dump_to=DIR, so
that the modules XLA really compiled show up as files.
    python xla_probe.py {fit,predict} {true,false,auto} [remat|plain]

With a third argument the model is deeper and the sequences longer, so
that activations, not weights, fill XLA's buffers; `remat` rematerialises
its layers.
"""

import sys

import keras
import numpy as np

from convbert_keras import ConvBertBackbone

mode, jit = sys.argv[1], {"true": True, "false": False, "auto": "auto"}[sys.argv[2]]
activations = len(sys.argv) > 3
length = 64 if activations else 12
backbone = ConvBertBackbone(
    vocabulary_size=50,
    num_layers=4 if activations else 2,
    num_heads=4,
    hidden_dim=16,
    embedding_dim=8,
    intermediate_dim=32,
    num_groups=2,
    max_sequence_length=length,
    remat=activations and sys.argv[3] == "remat",
)
model = keras.Model(backbone.input, keras.layers.Dense(2)(backbone.output["pooled_output"]))
model.compile(
    optimizer="adam",
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    jit_compile=jit,
)
x = {
    "token_ids": np.ones((4, length), "int32"),
    "segment_ids": np.zeros((4, length), "int32"),
    "padding_mask": np.ones((4, length), "int32"),
}
if mode == "fit":
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, batch_size=4, verbose=0)
else:
    model.predict(x, batch_size=4, verbose=0)
print("jit_compile", model.jit_compile)
