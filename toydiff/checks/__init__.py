"""Instant checks for the course's exercises: ``check_<exercise>(student_impl)``.

Each check runs named sub-checks, prints one line per sub-check (with a hint for a failure) and
returns a :class:`~toydiff.checks.core.CheckReport`. ``EXERCISES`` lists every exercise; the grader
(``toydiff grade``) runs the same sub-checks. One module per notebook topic holds its checks.
"""

from toydiff.checks.core import EXERCISES, CheckFailed, CheckReport, SubCheck, run_checks
from toydiff.checks.data import check_denormalize_img, check_gradient_images
from toydiff.checks.ddim import (
    check_ddim_step,
    check_karras_timesteps,
    check_respaced_betas,
    check_trailing_timesteps,
)
from toydiff.checks.fast_samplers import check_dpmpp_2m_step, check_half_log_snr
from toydiff.checks.forward import check_q_eq2, check_q_eq4
from toydiff.checks.generation import check_seeded_noise, check_slerp
from toydiff.checks.guidance import check_guided_eps
from toydiff.checks.model import check_toy_diffuser
from toydiff.checks.sampling import check_ddpm_step, check_spot_the_bug
from toydiff.checks.schedule import check_noise_img, check_noise_schedule, check_reconstruct
from toydiff.checks.training import check_diffusion_loss
from toydiff.checks.warmup import check_mse

__all__ = [
    "EXERCISES",
    "CheckFailed",
    "CheckReport",
    "SubCheck",
    "check_ddim_step",
    "check_ddpm_step",
    "check_denormalize_img",
    "check_diffusion_loss",
    "check_dpmpp_2m_step",
    "check_gradient_images",
    "check_guided_eps",
    "check_half_log_snr",
    "check_karras_timesteps",
    "check_mse",
    "check_noise_img",
    "check_noise_schedule",
    "check_q_eq2",
    "check_q_eq4",
    "check_reconstruct",
    "check_respaced_betas",
    "check_seeded_noise",
    "check_slerp",
    "check_spot_the_bug",
    "check_toy_diffuser",
    "check_trailing_timesteps",
    "run_checks",
]
