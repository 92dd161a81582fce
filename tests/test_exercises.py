import pytest
import torch
import torch.nn.functional as F

from gencourse import exercises, gan
from gencourse.exercises import ExerciseError

# ---- Notebook 02: The adversarial game ----


def test_check_discriminator_loss_accepts_the_reference(capsys):
    exercises.check_discriminator_loss(lambda r, f: gan.discriminator_loss(r, f, "minimax"))
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda r, f: F.softplus(r).mean() + F.softplus(-f).mean(), "swapped"),
        (lambda r, f: F.softplus(-r).sum() + F.softplus(f).sum(), "summed over the batch"),
        (lambda r, f: F.softplus(-r) + F.softplus(f), "one number"),
        (lambda r, f: -(F.softplus(-r).mean() + F.softplus(f).mean()), "sign is flipped"),
        (lambda r, f: -torch.sigmoid(r).log().mean() - (1 - torch.sigmoid(f)).log().mean(), "not finite"),
        (
            lambda r, f: (
                F.binary_cross_entropy(torch.sigmoid(r), torch.ones_like(r))
                + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f))
            ),
            "large logits",
        ),
        (lambda r, f: F.softplus(-r).mean(), "softplus"),
    ],
)
def test_check_discriminator_loss_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_discriminator_loss(wrong)


def test_check_nonsaturating_loss_accepts_the_reference(capsys):
    exercises.check_nonsaturating_loss(lambda f: gan.generator_loss(f, "nonsaturating"))
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda f: -F.softplus(f).mean(), "minimax loss"),
        (lambda f: F.softplus(f).mean(), "discriminator's goal"),
        (lambda f: -F.softplus(-f).mean(), "sign is flipped"),
        (lambda f: -torch.sigmoid(f).log().mean(), "infinite"),
        (lambda f: F.softplus(-f), "one number"),
    ],
)
def test_check_nonsaturating_loss_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_nonsaturating_loss(wrong)


def test_checkers_say_when_nothing_is_written_yet():
    def generator_loss(fake_logits):
        raise NotImplementedError

    with pytest.raises(ExerciseError, match="not written yet"):
        exercises.check_nonsaturating_loss(generator_loss)


# ---- Notebook 03: GANs on images ----


def _penalty(critic, real, fake, eps_shape=None, at=None, power=2, minus=1.0, create_graph=True):
    """A configurable gradient penalty: the reference, or one typical mistake."""
    eps = torch.rand(eps_shape or (len(real), *([1] * (real.dim() - 1))))
    x_hat = {"real": real, "fake": fake}.get(at, eps * real + (1 - eps) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=create_graph)
    return (grad.flatten(1).norm(dim=1) - minus).abs().pow(power).mean()


def test_check_gradient_penalty_accepts_the_reference_and_the_package(capsys):
    exercises.check_gradient_penalty(_penalty)
    exercises.check_gradient_penalty(gan.gradient_penalty)
    assert capsys.readouterr().out.count("Correct!") == 2


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda c, r, f: _penalty(c, r, f, minus=0.0), "subtract 1"),
        (lambda c, r, f: _penalty(c, r, f, power=1), "square"),
        (lambda c, r, f: _penalty(c, r, f, create_graph=False), "create_graph=True"),
        (lambda c, r, f: _penalty(c, r, f, at="real"), "real points only"),
        (lambda c, r, f: _penalty(c, r, f, at="fake"), "fake points only"),
        (lambda c, r, f: _penalty(c, r, f, eps_shape=(1, 1, 1, 1)), "one eps"),
        (lambda c, r, f: _penalty(c, r, f).unsqueeze(0), "one number"),
    ],
)
def test_check_gradient_penalty_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_gradient_penalty(wrong)


def _slerp_without_norms(z0, z1, t):
    omega = torch.arccos(z0 @ z1)  # forgets to divide by |z0| |z1|
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def test_check_slerp_accepts_the_reference(capsys):
    exercises.check_slerp(gan.slerp)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda z0, z1, t: (1 - t)[:, None] * z0 + t[:, None] * z1, "straight line"),
        (lambda z0, z1, t: gan.slerp(z1, z0, t), "start at z0"),
        (lambda z0, z1, t: gan.slerp(z0, z1, t)[:, :8], "shape"),
        (lambda z0, z1, t: gan.slerp(z0 / z0.norm(), z1 / z1.norm(), t), "must start at z0"),
        (lambda z0, z1, t: _slerp_without_norms(z0, z1, t), "NaN"),
    ],
)
def test_check_slerp_rejects_typical_mistakes(wrong, message):
    with pytest.raises(ExerciseError, match=message):
        exercises.check_slerp(wrong)
