"""Denoising score matching of ICE-BeeM's image EBMs (Khemakhem et al., "ICE-BeeM", NeurIPS 2020,
sections 4 and 5.2; docs/icebeem.md §4b, §5d): ``cdsm`` trains the conditional EBM E(x, y) =
f(x)^T g(y), ``dsm`` the unconditional baseline E(x) = sum_i f_i(x) (model kind ``image_ebm``,
``genlab.models.image_ebm``).

The loss is ``genlab.losses.dsm.dsm_loss`` with the original's normalisation (§4b), sigma = 0.01 by
default; batches carry images ``x`` (B, C, H, W) and, for ``cdsm``, class indices ``y`` (B,).

``update`` says what a step trains:

- ``"all"``: f and g, one optimizer ``model`` over every parameter;
- ``"g"`` (``cdsm`` only): g alone, optimizer ``g``, f frozen (its parameters stop requiring
  gradients, so none is computed): the transfer experiment, a new g on the f of a run trained on
  other classes;
- ``"none"``: nothing; no optimizer, the loss is only measured (the transfer experiment at N = 0,
  docs/icebeem.md §5d).

``frozen_mode`` is the mode of the frozen f when ``update`` is not ``"all"``: ``"eval"`` (default)
runs f with Dropout off and BatchNorm on its running statistics, neither of which a step then
changes; ``"train"`` is the original's behaviour (docs/icebeem.md §10.7): f stays in train mode, so
Dropout is on and the BatchNorm running statistics keep following the new data.

Training noise comes from the global RNG on the batch's device (the engine checkpoints RNG state,
so a resumed run draws the same). ``eval_step`` draws its noise from a generator seeded with
``eval_seed`` and the batch's first ``index`` (when the batch has one), so evaluation is
deterministic and leaves the global RNG alone; it runs the model in eval mode and takes the input
gradients the score needs, without building a graph for the parameters.
"""

from __future__ import annotations

import torch

from genlab.errors import ConfigError
from genlab.losses.dsm import dsm_loss
from genlab.objectives.base import OBJECTIVES, Objective

UPDATES = ("all", "g", "none")
FROZEN_MODES = ("eval", "train")


class _DenoisingScoreMatching(Objective):
    """DSM / CDSM of an ``image_ebm`` (module docstring); subclasses fix ``conditional``."""

    name = "dsm"
    conditional = False
    model_kind = "image_ebm"

    def __init__(self, sigma: float = 0.01, update: str = "all", frozen_mode: str = "eval", eval_seed: int = 0):
        sigma = float(sigma)
        if not sigma > 0:
            raise ConfigError(f"{self.name}: sigma must be positive, got {sigma}")
        if update not in UPDATES:
            raise ConfigError(f"{self.name}: update must be one of {', '.join(UPDATES)}, got {update!r}")
        if update == "g" and not self.conditional:
            raise ConfigError(f"{self.name}: update='g' needs the conditional EBM (objective cdsm); the unconditional one has no g")
        if frozen_mode not in FROZEN_MODES:
            raise ConfigError(f"{self.name}: frozen_mode must be one of {', '.join(FROZEN_MODES)}, got {frozen_mode!r}")
        if isinstance(eval_seed, bool) or int(eval_seed) != eval_seed or eval_seed < 0:
            raise ConfigError(f"{self.name}: eval_seed must be a non-negative integer, got {eval_seed!r}")
        self.sigma, self.update, self.frozen_mode, self.eval_seed = sigma, update, frozen_mode, int(eval_seed)

    # --- model ---------------------------------------------------------------------------------

    def _check(self, model) -> None:
        conditional = getattr(model, "conditional", None)
        if conditional is None:
            raise ConfigError(f"{self.name} trains an image_ebm model; got {type(model).__name__}")
        if bool(conditional) != self.conditional:
            raise ConfigError(
                f"{self.name} needs the {'conditional' if self.conditional else 'unconditional'} image_ebm "
                f"(model.options.conditional={self.conditional}); the model is "
                f"{'conditional' if conditional else 'unconditional'}: use objective {'cdsm' if conditional else 'dsm'}"
            )
        if self.update == "g" and model.g is None:
            raise ConfigError(f"{self.name}: update='g' needs a model with a learned g")

    def make_optimizers(self, model, optimizer):
        """``all``: {"model": every parameter}; ``g``: {"g": g's}, f frozen; ``none``: {}, all frozen."""
        self._check(model)
        if self.update == "all":
            return {"model": optimizer(model.parameters())}
        frozen = model.f if self.update == "g" else model
        for p in frozen.parameters():
            p.requires_grad_(False)
        return {"g": optimizer(model.g.parameters())} if self.update == "g" else {}

    def _energy_fn(self, model, batch):
        if self.conditional:
            y = batch["y"]
            return lambda x: model.energy(x, y)
        return lambda x: model.energy(x)

    # --- steps ---------------------------------------------------------------------------------

    def train_step(self, model, optimizers, batch, progress):
        self._check(model)
        model.train()
        if self.update != "all" and self.frozen_mode == "eval":
            model.f.eval()
        opts = list(optimizers.values()) if self.update != "none" else []
        loss = dsm_loss(self._energy_fn(model, batch), batch["x"], self.sigma, create_graph=bool(opts))
        if opts:
            for opt in opts:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in opts:
                opt.step()
        return {"loss": float(loss.detach())}

    def eval_noise(self, batch) -> torch.Tensor:
        """The evaluation noise of ``batch``: N(0, I) from a generator seeded with ``eval_seed`` and the
        batch's first ``index`` (0 without one), on the batch's device."""
        x, index = batch["x"], batch.get("index")
        first = int(index.reshape(-1)[0]) if index is not None and index.numel() else 0
        generator = torch.Generator(device=x.device).manual_seed(self.eval_seed * 2**32 + first)
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)

    def eval_step(self, model, batch):
        self._check(model)
        model.eval()
        loss = dsm_loss(self._energy_fn(model, batch), batch["x"], self.sigma, noise=self.eval_noise(batch),
                        create_graph=False)  # fmt: skip
        return {"loss": float(loss)}


@OBJECTIVES.register("dsm")
class DenoisingScoreMatching(_DenoisingScoreMatching):
    """Unconditional DSM of E(x) = sum_i f_i(x) (docs/icebeem.md §4b)."""

    name = "dsm"
    conditional = False
    model_options = {"conditional": False}


@OBJECTIVES.register("cdsm")
class ConditionalDenoisingScoreMatching(_DenoisingScoreMatching):
    """Conditional DSM of E(x, y) = f(x)^T g(y) (docs/icebeem.md §4b)."""

    name = "cdsm"
    conditional = True
    model_options = {"conditional": True}


__all__ = ["ConditionalDenoisingScoreMatching", "DenoisingScoreMatching", "FROZEN_MODES", "UPDATES"]
