"""skvae: variational autoencoders as scikit-learn transformers."""

from ._imputer import VAEImputer
from ._modules import VAEModule
from ._onnx import register_onnx_converters, to_onnx
from ._outliers import VAEOutlierDetector
from ._plotting import (
    LatentSpaceDisplay,
    LatentTraversalDisplay,
    LossCurveDisplay,
    ReconstructionDisplay,
    SamplesDisplay,
)
from ._transformer import VAETransformer
from ._utils import VERSION as __version__

__all__ = [
    "LatentSpaceDisplay",
    "LatentTraversalDisplay",
    "LossCurveDisplay",
    "ReconstructionDisplay",
    "SamplesDisplay",
    "VAEImputer",
    "VAEModule",
    "VAEOutlierDetector",
    "VAETransformer",
    "__version__",
    "register_onnx_converters",
    "to_onnx",
]
