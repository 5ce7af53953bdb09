import keras


def _lowbias32(x):
    """A 32-bit integer hash (Wellons' "lowbias32") on wrapping int32.

    Logical right shifts are arithmetic shifts with the sign bits masked.
    """
    import tensorflow as tf

    def shift_xor(v, bits):
        shifted = tf.bitwise.right_shift(v, bits)
        return tf.bitwise.bitwise_xor(v, tf.bitwise.bitwise_and(shifted, (1 << (32 - bits)) - 1))

    x = shift_xor(x, 16)
    x = x * tf.constant(0x7FEB352D, tf.int32)
    x = shift_xor(x, 15)
    x = x * tf.constant(0x846CA68B - (1 << 32), tf.int32)
    return shift_xor(x, 16)


def hash_uniform_bits(shape, seed, row_offset=0):
    """24 uniform random bits per element, as int32 in `[0, 2^24)`.

    A counter-based hash of (seed, element index): elementwise integer
    arithmetic that XLA fuses and that runs the same on CPU, GPU and TPU.
    `seed` is an int32 tensor of two values. `row_offset` shifts the index
    by that many rows (first-axis slices): the draws of rows `[r, r + n)`
    of a larger tensor, so that a replica holding part of a global batch
    draws what one device would draw for those rows.
    """
    import tensorflow as tf

    # (row, position in the row) -> row * per_row + position in wrapping
    # int32: a global batch past 2^31 elements wraps, the same on every
    # strategy, instead of overflowing a range.
    shape = tf.cast(shape, "int32")
    per_row = tf.reduce_prod(shape[1:])
    rows = tf.range(shape[0], dtype="int32") + tf.cast(row_offset, "int32")
    index = tf.reshape(rows[:, None] * per_row + tf.range(per_row, dtype="int32")[None, :], shape)
    bits = _lowbias32(
        tf.bitwise.bitwise_xor(_lowbias32(tf.bitwise.bitwise_xor(index, seed[0])), seed[1])
    )
    return tf.bitwise.bitwise_and(tf.bitwise.right_shift(bits, 8), 0xFFFFFF)


def hash_uniform(shape, seed, row_offset=0):
    """Uniform floats in the open interval (0, 1), from `hash_uniform_bits`."""
    import tensorflow as tf

    return (tf.cast(hash_uniform_bits(shape, seed, row_offset), "float32") + 0.5) / float(1 << 24)


def int32_seed(seed):
    """A Keras `SeedGenerator` draw as the int32 pair the hashes take."""
    import tensorflow as tf

    return tf.cast(tf.math.floormod(seed, 2**31 - 1), "int32")


@keras.saving.register_keras_serializable(package="convbert_keras")
class HashDropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose mask costs almost nothing under XLA.

    Keras' TensorFlow dropout draws its mask with the `auto_select` random
    algorithm, which XLA on CPU compiles about 100 times slower than plain
    elementwise code; even an explicit Philox generator made dropout 15-20%
    of a ConvBERT training step. This layer derives each element's keep bit
    from a counter-based hash of (a fresh per-call seed from the layer's
    seed generator, the element's index in the global batch, so that the
    replicas of a distributed step draw different masks and together the
    masks one device would draw): elementwise integer arithmetic
    that XLA fuses into the consumer, and that runs the same on CPU, GPU
    and TPU, inside XLA or not. Elements are kept with probability
    `1 - rate` (to 2^-24) and scaled by `1 / (1 - rate)`. Other backends
    use Keras' own dropout, and so does a `noise_shape`.

    Arguments, input and output shapes are those of `keras.layers.Dropout`;
    `call` also takes `seed`, an int32 pair from `next_seed()`, to draw a
    given mask again (TensorFlow only).

    Example:
    ```python
    layer = HashDropout(0.1, seed=1)
    y = layer(np.ones((2, 8), "float32"), training=True)
    ```
    """

    def next_seed(self):
        """Draws the seed of the next mask, to pass as `call(..., seed=)`:
        a computation run twice with the same seed (a rematerialised layer
        recomputed in the backward pass) drops the same elements."""
        return int32_seed(self.seed_generator.next())

    def call(self, inputs, training=False, seed=None):
        if (
            not training
            or self.rate == 0
            or self.noise_shape is not None
            or keras.config.backend() != "tensorflow"
        ):
            return super().call(inputs, training=training)
        import tensorflow as tf

        from convbert_keras.distribute import replica_row_offset

        if seed is None:
            seed = int32_seed(self.seed_generator.next())
        shape = tf.shape(inputs)
        uniform24 = hash_uniform_bits(shape, seed, replica_row_offset(shape[0]))
        keep = uniform24 >= int(round(self.rate * (1 << 24)))
        scale = tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(keep, inputs * scale, tf.zeros_like(inputs))
