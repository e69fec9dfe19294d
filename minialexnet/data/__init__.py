"""Datasets (uint8 NHWC images + int64 labels) and the pipeline that feeds them to a model."""

from .dataset import Dataset, load_dataset
from .loader import BatchIterator, BatchLoader
from .transforms import (
    TEN_CROP_ORDER,
    Stats,
    dataset_statistics,
    eval_transform,
    ten_crop,
    train_transform,
)

__all__ = [
    "Dataset",
    "load_dataset",
    "BatchIterator",
    "BatchLoader",
    "Stats",
    "TEN_CROP_ORDER",
    "dataset_statistics",
    "eval_transform",
    "ten_crop",
    "train_transform",
]
