import pytest
import torch

from gencourse import nn as gnn


def test_mlp_shapes_and_output_activation():
    mlp = gnn.MLP(2, 3, hidden=(16, 16), out_act="tanh")
    out = mlp(torch.randn(5, 2) * 100)
    assert out.shape == (5, 3) and out.abs().max() <= 1
    assert gnn.count_parameters(gnn.MLP(2, 1, hidden=(4,))) == 2 * 4 + 4 + 4 + 1
    with pytest.raises(ValueError, match="unknown activation"):
        gnn.MLP(2, 2, act="swishy")


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_conv_encoder_decoder_shapes(norm):
    x = torch.rand(4, 1, 28, 28)
    assert gnn.ConvEncoder(7, norm=norm)(x).shape == (4, 7)
    out = gnn.ConvDecoder(7, out_channels=1, norm=norm, out_act="tanh")(torch.randn(4, 7))
    assert out.shape == (4, 1, 28, 28) and out.abs().max() <= 1
