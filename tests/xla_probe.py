"""Fits or predicts tiny ConvBERT classifiers, one case after another, and
sorts what XLA compiled for each case into a folder of its own.

Used by test_xla.py in a fresh process with XLA_FLAGS=--xla_dump_to=DUMP, so
that the modules XLA really compiled show up as files:
    python xla_probe.py DUMP CASE...

A case is `{fit,predict},{true,false,auto}[,remat|,plain]`: one fit step or
one predict, with that `jit_compile`. With a third part the model is deeper
and the sequences longer, so that activations, not weights, fill XLA's
buffers; `remat` rematerialises its layers. After each case the files it
added to DUMP move to `DUMP/<case>/` (commas as underscores), and a line
`<case> jit_compile <resolved value>` is printed.
"""

import os
import sys

import keras
import numpy as np

from convbert_keras import ConvBertBackbone


def run(case):
    mode, jit, *variant = case.split(",")
    jit = {"true": True, "false": False, "auto": "auto"}[jit]
    activations = bool(variant)
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
        remat=variant == ["remat"],
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
    return model.jit_compile


def main(dump, cases):
    os.makedirs(dump, exist_ok=True)
    for case in cases:
        before = set(os.listdir(dump))
        jit_compile = run(case)
        added = set(os.listdir(dump)) - before
        folder = os.path.join(dump, case.replace(",", "_"))
        os.makedirs(folder)
        # XLA writes a module's files while compiling it, so they are all
        # there once the fit or predict has returned.
        for name in added:
            os.replace(os.path.join(dump, name), os.path.join(folder, name))
        print(case, "jit_compile", jit_compile, flush=True)
        keras.backend.clear_session()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
