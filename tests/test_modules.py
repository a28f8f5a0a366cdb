"""The PyTorch modules alone: shapes, clamps, gradients."""

import pytest
import torch

from skvae._likelihoods import BernoulliLikelihood, GaussianLikelihood
from skvae._modules import LOGVAR_MAX, LOGVAR_MIN, Encoder, VAEModule, VAEOutput


@pytest.mark.parametrize("likelihood", [BernoulliLikelihood, GaussianLikelihood])
@pytest.mark.parametrize("hidden", [(7,), (16, 8)])
def test_forward_shapes(likelihood, hidden):
    module = VAEModule(
        5, n_components=3, hidden_layer_sizes=hidden, likelihood=likelihood
    )
    out = module(torch.rand(4, 5))
    assert isinstance(out, VAEOutput)
    assert out.z_mean.shape == out.z_logvar.shape == out.z.shape == (4, 3)
    assert out.x_params.shape == (4, 5 * likelihood.n_params_per_feature)


def test_reparameterisation_is_differentiable_and_random():
    module = VAEModule(5, n_components=2, hidden_layer_sizes=(8,))
    x = torch.rand(4, 5)
    a, b = module(x), module(x)
    assert torch.equal(a.z_mean, b.z_mean)
    assert not torch.equal(a.z, b.z)
    a.x_params.sum().backward()
    assert all(p.grad is not None for p in module.encoder.parameters())


def test_log_variance_is_clamped():
    encoder = Encoder(3, 2, (4,), "relu")
    with torch.no_grad():
        encoder.head.bias.fill_(1e6)
    _, z_logvar = encoder(torch.rand(2, 3))
    assert torch.all(z_logvar == LOGVAR_MAX)
    with torch.no_grad():
        encoder.head.bias.fill_(-1e6)
    _, z_logvar = encoder(torch.rand(2, 3))
    assert torch.all(z_logvar == LOGVAR_MIN)


def test_gaussian_scale_is_a_trained_parameter():
    module = VAEModule(5, likelihood=GaussianLikelihood)
    names = dict(module.named_parameters())
    assert "likelihood.raw_scale" in names
    assert torch.allclose(module.likelihood.scale, torch.ones(5))


def test_the_decoder_linear_path_adds_a_linear_map_of_z():
    module = VAEModule(5, n_components=2, hidden_layer_sizes=(8,), linear_path=True)
    z = torch.randn(4, 2)
    decoder = module.decoder
    expected = decoder.head(decoder.hidden(z)) + z @ decoder.linear.weight.T
    assert torch.allclose(decoder(z), expected)
    assert VAEModule(5).decoder.linear is None


def test_a_mask_aware_encoder_tells_gaps_from_zeros():
    torch.manual_seed(0)
    module = VAEModule(3, n_components=2, hidden_layer_sizes=(8,), mask_input=True)
    assert module.encoder.hidden[0].in_features == 6
    x = torch.zeros(1, 3)
    observed = torch.ones(1, 3, dtype=torch.bool)
    gaps = torch.tensor([[True, False, True]])
    assert torch.equal(module.encode(x)[0], module.encode(x, observed)[0])
    assert not torch.equal(module.encode(x, gaps)[0], module.encode(x, observed)[0])
