"""The models layer: blocks, backbones per family, heads and the registry.

    >>> from mmdigits_keras.models import build_model, create_model, list_models
    >>> build_model(depth=2).count_params()           # Nippani Ravi's Model 2
    6766478
    >>> create_model("hybrid_cnn", include_top=False)  # Tseng's encoders: {"image", "audio"}

`build_model(depth=k)` builds the late-fusion family only (Models 1-4, the call the course's
notebooks know); `create_model(name)` builds any registry model, Models 1-4 included. Importing
this package registers every family (late_fusion, hybridnet, fusion_1dcnn); `PAPERS` cites the
course reports the registry's ``source`` names.
"""

from mmdigits_keras.models import fusion_1dcnn, hybridnet, late_fusion  # noqa: F401  (importing registers the families)
from mmdigits_keras.models.backbone import feature_extractor, get_backbone, modalities_of
from mmdigits_keras.models.ensemble import ensemble_model
from mmdigits_keras.models.heads import retrieval_towers
from mmdigits_keras.models.late_fusion import build_model
from mmdigits_keras.models.registry import (
    PAPERS,
    ModelInfo,
    create_backbone,
    create_model,
    list_models,
    model_config,
    model_info,
    register_model,
)

MODEL_CONFIGS = {name: model_config(name) for name in list_models()}

__all__ = ["MODEL_CONFIGS", "PAPERS", "ModelInfo", "build_model", "create_backbone", "create_model", "ensemble_model",
           "feature_extractor", "get_backbone", "list_models", "modalities_of", "model_config", "model_info",
           "register_model", "retrieval_towers"]
