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

try:
    from ._version import __version__
except ImportError:  # a source tree that was never installed
    __version__ = "0+unknown"

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
