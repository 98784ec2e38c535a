"""Run building, checkpointing, logging and drawing helpers."""

from src.utils import resolvers  # noqa: F401  (registers the OmegaConf resolvers the configs use)
