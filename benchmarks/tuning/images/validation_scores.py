"""The validation score of CMPE training runs, from their tensorboard logs.

`CMPEInference` logs `validation_loss` (the energy score of posterior draws at the held-out
validation simulations; lower is better) to `sbi-logs/CMPEInference/<start time>/`. For each
LABEL=DIR given, prints the number of validations, the first, the best (with its epoch) and the
last score.

    python benchmarks/tuning/images/validation_scores.py LABEL=DIR [LABEL=DIR ...]
"""

import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def main() -> None:
    for argument in sys.argv[1:]:
        label, folder = argument.split("=", 1)
        events = EventAccumulator(folder)
        events.Reload()
        scores = events.Scalars("validation_loss")
        best = min(scores, key=lambda s: s.value)
        print(
            f"{label}: {len(scores)} validations, first {scores[0].value:.4f}, best "
            f"{best.value:.4f} (epoch {best.step}), last {scores[-1].value:.4f} "
            f"(epoch {scores[-1].step})"
        )


if __name__ == "__main__":
    main()
