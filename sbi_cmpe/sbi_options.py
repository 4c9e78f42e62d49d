"""sbi's trainer and posterior keywords that CMPE accepts, translates or refuses.

`CMPEInference.train` and `build_posterior` take sbi's arguments in sbi's order, so that a
pipeline written for `NPE` runs unchanged; the ones that mean nothing for a consistency
model are accepted at their neutral value and refused with an error otherwise.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

__all__ = ["check_train_options", "posterior_options"]


def check_train_options(
    calibration_kernel: Optional[Callable], discard_prior_samples: bool
) -> None:
    """Refuse sbi's training options that CMPE has no use for at other than their defaults.

    Arguments:
        calibration_kernel: sbi's per-simulation loss weights; only `None`.
        discard_prior_samples: sbi's dropping of the first round; only `False`.

    Raises:
        ValueError: Naming the option.
    """
    if calibration_kernel is not None:
        raise ValueError(
            "CMPE takes no calibration_kernel: its loss weighs every simulation equally."
        )
    if discard_prior_samples:
        raise ValueError(
            "CMPE trains on every round's simulations (all from the prior or a truncated "
            "prior); discard_prior_samples=True is not supported."
        )


def posterior_options(
    estimator: Any,
    sample_with: str,
    max_sampling_batch_size: Optional[int],
    density_estimator: Any,
    direct_sampling_parameters: Optional[dict],
    others: dict,
) -> Tuple[Any, Optional[int]]:
    """The estimator and `max_sampling_batch_size` of `build_posterior`, from sbi's names.

    Arguments:
        estimator: CMPE's name of the estimator.
        sample_with: Only `"direct"`.
        max_sampling_batch_size: Given directly.
        density_estimator: sbi's name of the estimator.
        direct_sampling_parameters: sbi's keywords of the posterior; only
            `max_sampling_batch_size`.
        others: Any further keywords (sbi's other samplers'), all refused.

    Returns:
        `(estimator, max_sampling_batch_size)`.

    Raises:
        ValueError: For other samplers, an estimator or a batch size given twice, and
            keywords CMPE does not take.
    """
    if sample_with != "direct" or others:
        unsupported = dict(others, sample_with=sample_with) if sample_with != "direct" else others
        raise ValueError(f"CMPE posteriors sample directly; unsupported arguments: {unsupported}.")
    if density_estimator is not None:
        if estimator is not None:
            raise ValueError("Pass the estimator once: as `estimator` or `density_estimator`.")
        estimator = density_estimator
    extra = dict(direct_sampling_parameters or {})
    if "max_sampling_batch_size" in extra:
        if max_sampling_batch_size is not None:
            raise ValueError(
                "max_sampling_batch_size is given both directly and in direct_sampling_parameters."
            )
        max_sampling_batch_size = extra.pop("max_sampling_batch_size")
    if extra:
        raise ValueError(
            "direct_sampling_parameters of a CMPE posterior take only "
            f"max_sampling_batch_size; unsupported: {sorted(extra)}."
        )
    return estimator, max_sampling_batch_size
