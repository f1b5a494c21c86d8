"""Diffusion and flow-matching trainable: schedules, parameterizations, objectives, samplers, a small U-Net."""
