import pytest

from gencourse import exercises as E

# ---- Notebook 07: Diffusion models ----


def _q_sample_right(x0, t, noise, schedule):
    abar = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


class _OneStep:
    """A schedule whose alphas_cumprod is alphas: the "one step instead of the product" mistake."""

    def __init__(self, schedule):
        self.alphas_cumprod = schedule.alphas


def _variances(x0, t, noise, schedule):
    abar = schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    return abar * x0 + (1 - abar) * noise


def test_check_q_sample_accepts_the_reference(capsys):
    E.check_q_sample(_q_sample_right)
    assert "Correct!" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong,message",
    [
        (lambda x0, t, n, s: _q_sample_right(x0, t, n, _OneStep(s)), "alphas_cumprod"),
        (lambda x0, t, n, s: _variances(x0, t, n, s), "standard deviations"),
        (lambda x0, t, n, s: _q_sample_right(n, t, x0, s), "swapped"),
        (lambda x0, t, n, s: _q_sample_right(x0, t, n, s)[:, 0], "shape"),
    ],
)
def test_check_q_sample_rejects_typical_mistakes(wrong, message):
    with pytest.raises(E.ExerciseError, match=message):
        E.check_q_sample(wrong)


def test_check_q_sample_says_not_done_yet():
    def stub(x0, t, noise, schedule):
        raise NotImplementedError

    with pytest.raises(E.ExerciseError, match="not written yet"):
        E.check_q_sample(stub)


def _ddpm_step_right(x_t, eps, t, schedule, z):
    beta, alpha, abar = schedule.betas[t], schedule.alphas[t], schedule.alphas_cumprod[t]
    mean = (x_t - beta / (1 - abar).sqrt() * eps) / alpha.sqrt()
    return mean + beta.sqrt() * z if t > 0 else mean


def test_check_ddpm_step_accepts_the_reference(capsys):
    E.check_ddpm_step(_ddpm_step_right)
    assert "Correct!" in capsys.readouterr().out


def _no_noise(x_t, eps, t, s, z):
    return _ddpm_step_right(x_t, eps, 0, s, z) if t == 0 else _ddpm_step_right(x_t, eps, t, s, z * 0)


def _noise_at_zero(x_t, eps, t, s, z):
    out = _ddpm_step_right(x_t, eps, t, s, z)
    return out + s.betas[0].sqrt() * z if t == 0 else out


def _abar_in_mean(x_t, eps, t, s, z):
    beta, abar = s.betas[t], s.alphas_cumprod[t]
    return (x_t - beta / (1 - abar).sqrt() * eps) / abar.sqrt() + (beta.sqrt() * z if t else 0)


@pytest.mark.parametrize(
    "wrong,message",
    [(_no_noise, "no noise is added"), (_noise_at_zero, "t = 0"), (_abar_in_mean, "sqrt\\(alpha_t\\)")],
)
def test_check_ddpm_step_rejects_typical_mistakes(wrong, message):
    with pytest.raises(E.ExerciseError, match=message):
        E.check_ddpm_step(wrong)
