"""sbibm-style benchmark of CMPE against sbi's NPE, FMPE and NPSE on the same simulations."""

from sbi_cmpe.benchmark.methods import METHODS, train_method
from sbi_cmpe.benchmark.run import Settings, run_benchmark
from sbi_cmpe.benchmark.tasks import SBIBM_TASKS, Task, load_task

__all__ = [
    "METHODS",
    "SBIBM_TASKS",
    "Settings",
    "Task",
    "load_task",
    "run_benchmark",
    "train_method",
]
