"""SavedModel export with raw-string signatures, in TF Serving's layout;
LiteRT export of the token-id signature; clients for the model server."""

from convbert_keras.export.litert import export_litert
from convbert_keras.export.saved_model import export_saved_model
from convbert_keras.export.tf_serving import export_for_tf_serving

__all__ = ["export_litert", "export_saved_model", "export_for_tf_serving"]
