"""toydiff: denoising diffusion (DDPM, DDIM, DPM-Solver) end to end, small enough for a laptop CPU.

The public names of the course live here (see README.md); each comes from the module named after
its concept: data, schedule, forward, model, training, sampling, checkpoint, metrics, plotting.
"""

from toydiff.checkpoint import load_checkpoint, save_checkpoint
from toydiff.data import (
    GRADIENT_CLASSES,
    denormalize_img,
    gradient_images,
    labelled_gradient_images,
    normalize_img,
)
from toydiff.evaluation import evaluate
from toydiff.forward import noise_img, q_eq2, q_eq4, reconstruct
from toydiff.generation import ImageGenerator, InferenceModel, reproduce_image
from toydiff.metrics import (
    corner_color_distance,
    corner_color_spread,
    fit_gradients,
    gradient_rms,
    mode_coverage,
    near_mode_fraction,
    nearest_mode,
)
from toydiff.mixture import GaussianMixture, MixtureNoisePredictor
from toydiff.model import ToyDiffuser, ToyDiffuserConfig
from toydiff.noise import NoiseStrategies
from toydiff.samplers import DDIMSampler, DDPMSampler, DPMSolverSampler, model_noise_fn, slerp
from toydiff.sampling import sample
from toydiff.schedule import (
    NoiseSchedule,
    StepCoefficients,
    cosine_variance_schedule,
    step_coefficients,
    variance_schedule,
)
from toydiff.timesteps import TimestepScheduler
from toydiff.training import TrainConfig, train

__all__ = [
    "GRADIENT_CLASSES",
    "DDIMSampler",
    "DDPMSampler",
    "DPMSolverSampler",
    "GaussianMixture",
    "ImageGenerator",
    "InferenceModel",
    "MixtureNoisePredictor",
    "NoiseSchedule",
    "NoiseStrategies",
    "StepCoefficients",
    "TimestepScheduler",
    "ToyDiffuser",
    "ToyDiffuserConfig",
    "TrainConfig",
    "corner_color_distance",
    "corner_color_spread",
    "cosine_variance_schedule",
    "denormalize_img",
    "evaluate",
    "fit_gradients",
    "gradient_images",
    "gradient_rms",
    "labelled_gradient_images",
    "load_checkpoint",
    "mode_coverage",
    "model_noise_fn",
    "near_mode_fraction",
    "nearest_mode",
    "noise_img",
    "normalize_img",
    "q_eq2",
    "q_eq4",
    "reconstruct",
    "reproduce_image",
    "sample",
    "save_checkpoint",
    "slerp",
    "step_coefficients",
    "train",
    "variance_schedule",
]
