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


# ---- Time embedding, TimeMLP, U-Net and EMA (diffusion, notebook 07) ----


def test_timestep_embedding_is_bounded_distinct_and_checks_its_size():
    t = torch.arange(1000) / 1000
    emb = gnn.timestep_embedding(t, 64)
    assert emb.shape == (1000, 64) and emb.abs().max() <= 1
    assert torch.allclose(emb[:, :32].pow(2) + emb[:, 32:].pow(2), torch.ones(1000, 32), atol=1e-5)  # cos^2 + sin^2
    assert torch.cdist(emb[:-1:7], emb[1::7]).min() > 0.1  # neighbouring DDPM steps get different embeddings
    with pytest.raises(ValueError, match="even"):
        gnn.timestep_embedding(t, 7)


@pytest.mark.parametrize("patch,ch_mult", [(1, (1, 2, 2)), (2, (1, 2))])
def test_unet_maps_images_to_images_and_starts_at_zero(patch, ch_mult):
    torch.manual_seed(0)
    net = gnn.UNet(ch=8, ch_mult=ch_mult, patch=patch)
    x, t = torch.randn(3, 1, 28, 28), torch.rand(3)
    assert torch.equal(net(x, t), torch.zeros_like(x))  # the output layer starts at zero
    torch.nn.init.normal_(net.head[2].weight, std=0.1)
    out = net(x, t)
    assert out.shape == x.shape and out.abs().max() > 0
    assert not torch.allclose(out, net(x, 1 - t), atol=1e-4)  # it depends on the time
    assert not torch.allclose(out[:1], net(x[:1] + 0.5, t[:1]), atol=1e-4)


def test_unet_is_local_per_example_and_uses_labels():
    """Example i's output depends on example i only (GroupNorm, no batch statistics), and on its label."""
    torch.manual_seed(0)
    net = gnn.UNet(ch=8, ch_mult=(1, 2), num_classes=10)
    torch.nn.init.normal_(net.head[2].weight, std=0.1)
    x, t, y = torch.randn(4, 1, 28, 28), torch.rand(4), torch.tensor([0, 1, 2, 3])
    out = net(x, t, y)
    assert torch.allclose(out[1:2], net(x[1:2], t[1:2], y[1:2]), atol=1e-5)
    assert not torch.allclose(out, net(x, t, torch.tensor([9, 9, 9, 9])), atol=1e-4)
    assert torch.allclose(net(x, t), net(x, t, torch.full((4,), 10)))  # no labels = the "no label" token
    with pytest.raises(ValueError, match="labels must lie in"):
        net(x, t, torch.tensor([0, 1, 2, 11]))


def test_unet_rejects_bad_shapes():
    net = gnn.UNet(ch=8, ch_mult=(1, 2, 2))
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(2, 1, 30, 30), torch.rand(2))
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        net(torch.randn(2, 3, 28, 28), torch.rand(2))


def test_time_mlp_shapes_and_conditioning():
    torch.manual_seed(0)
    net = gnn.TimeMLP(2, hidden=16, depth=2, num_classes=3)
    x, t = torch.randn(5, 2), torch.rand(5)
    assert net(x, t).shape == (5, 2)
    assert not torch.allclose(net(x, t), net(x, t, torch.zeros(5, dtype=torch.long)))
    with pytest.raises(ValueError, match=r"\[B, 2\]"):
        net(torch.randn(5, 3), t)
    with pytest.raises(ValueError, match="unconditional"):
        gnn.TimeMLP(2)(x, t, torch.zeros(5, dtype=torch.long))


def test_ema_tracks_the_average_of_the_weights():
    model = torch.nn.Linear(1, 1, bias=False)
    ema = gnn.EMA(model, decay=0.5)
    with torch.no_grad():
        for value in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0):
            model.weight.fill_(value)
            ema.update(model)
    target = torch.nn.Linear(1, 1, bias=False)
    ema.copy_to(target)
    # once the warm-up is over (k >= 8 here) the decay is 0.5: w_ema = 0.5 w_ema + 0.5 w, lagging by ~1
    assert 10.5 < target.weight.item() < 11.5
    with pytest.raises(ValueError, match="decay"):
        gnn.EMA(model, decay=1.0)


def test_ema_attached_to_an_optimizer_averages_the_weights_after_each_of_its_steps():
    """n optimizer steps make exactly n updates (the first step counted, the last counted once), and the
    average is the hand-computed w_ema_k = d_k w_ema_{k-1} + (1 - d_k) w_k, d_k = min(decay, (1 + k) / (10 + k))."""
    from gencourse.train import fit

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    snapshots = {1: None, 3: None}
    ema = gnn.EMA(model, decay=0.3, snapshots=snapshots)
    handle = ema.attach(optimizer, model)
    after_step = []
    optimizer.register_step_post_hook(lambda opt, args, kwargs: after_step.append(model.weight.detach().clone()))
    data = [(torch.randn(8, 3), torch.randn(8, 1)) for _ in range(5)]
    fit(model, lambda m, b: (m(b[0]) - b[1]).pow(2).mean(), data, steps=5, optimizer=optimizer)
    assert ema.updates == 5 and len(after_step) == 5
    expected, average = {}, initial["weight"]
    for k, w in enumerate(after_step, 1):
        d = min(0.3, (1 + k) / (10 + k))
        average = d * average + (1 - d) * w
        expected[k] = average
    assert torch.allclose(ema.shadow["weight"], expected[5], atol=1e-7)
    assert torch.allclose(snapshots[1]["weight"], expected[1], atol=1e-7)
    assert torch.allclose(snapshots[3]["weight"], expected[3], atol=1e-7)
    handle.remove()
    optimizer.step()
    assert ema.updates == 5  # detached: further steps leave the average alone
    with pytest.raises(ValueError, match="snapshot steps"):
        gnn.EMA(model, snapshots={0: None})
