"""One seeded training run and its draws, as hashes: the same before and after a change that
must not change training (run it with each version of sbi_cmpe on sys.path). It also pickles
the posterior, as `tests/data/posterior_0.2.0.dev0.pkl` was made.

    PYTHONPATH=<checkout> python benchmarks/scripts/seeded_run.py /tmp/out_prefix
"""

import hashlib
import pickle
import sys
import warnings

import torch
from sbi.utils import BoxUniform

import sbi_cmpe
from sbi_cmpe import CMPEInference, consistency_nn

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
out = sys.argv[1]
torch.manual_seed(0)
prior = BoxUniform(-2 * torch.ones(2), 2 * torch.ones(2))
theta = prior.sample((600,))
x = theta + 0.3 * torch.randn_like(theta)
torch.manual_seed(1)
inf = CMPEInference(
    prior,
    density_estimator=consistency_nn(hidden_features=16, num_layers=1),
    show_progress_bars=False,
)
inf.append_simulations(theta, x).train(max_num_epochs=40)
post = inf.build_posterior()
torch.manual_seed(2)
s = post.sample((1000,), x=torch.zeros(2), show_progress_bars=False)
w = torch.cat([p.detach().flatten() for p in post.estimator.parameters()])
print(
    sbi_cmpe.__file__,
    "weights sha",
    hashlib.sha256(w.numpy().tobytes()).hexdigest()[:16],
    "samples sha",
    hashlib.sha256(s.numpy().tobytes()).hexdigest()[:16],
    "mean",
    s.mean(0).tolist(),
)
torch.save({"samples": s, "weights": w}, out + "_run.pt")
with open(out + "_posterior.pkl", "wb") as f:
    pickle.dump(post, f)
